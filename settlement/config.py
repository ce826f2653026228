"""Settings from the environment (and `.env`), all prefixed SETTLE_; defaults work with
nothing configured: a SQLite file in the working directory and in-process jobs."""
from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SETTLE_", env_file=".env", extra="ignore")

    # The owner's URL: migrations (settle db upgrade), the workers and the command line.
    database_url: str = "sqlite:///settle.sqlite3"
    # The web's URL, as the login role settle_app (row-level security binds it; README,
    # "Database roles"). Unset: database_url with settle_app as its user and
    # app_database_password as its password (none: trust or peer authentication).
    app_database_url: str | None = None
    app_database_password: str | None = None
    redis_url: str | None = None  # unset: jobs run in-process
    queue_prefix: str = ""  # separates rq queues of parallel test runs on one Redis
    paypal_base_url: str = "http://127.0.0.1:8765"
    paypal_client_id: str = "sandbox-client"
    paypal_client_secret: str = "sandbox-secret"
    paypal_timeout_seconds: float = 10.0  # one HTTP call; past it the outcome is unknown
    outbox_dir: str = "outbox"
    check_account: str | None = None  # the bank account checks are drawn on (positive pay)
    check_number_offset: int = 0  # keeps our check numbers clear of the account's others
    payout_poll_seconds: float = 2.0  # between polls of a provider's batch
    payout_max_polls: int = 30  # then the batch job ends; `settle run execute` resumes
    watchdog_seconds: int = 60  # the clock's watchdogs (runs, reports) run this often
    max_upload_bytes: int = 512 * 1024 * 1024  # a larger body is refused (upload_too_large)
    # The id PayPal gave our webhook subscription: it is part of what PayPal signs, so an
    # event signed for another subscription is refused. The sandbox signs with this one.
    paypal_webhook_id: str = "WH-SANDBOX"
    webhook_max_bytes: int = 64 * 1024  # PayPal's events are a few KiB
    # A webhook body must arrive within this time (a slow client cannot hold a thread).
    webhook_read_timeout_seconds: float = 10.0
    log_level: str = "INFO"
    # Gift codes are stored encrypted (AES-256-GCM) with this key, 32 bytes in urlsafe
    # base64; unset: a key made once and kept in <outbox_dir>/.gift-code-key (the demo).
    gift_code_key: str | None = None
    amazon_base_url: str = "http://127.0.0.1:8766"  # Incentives API (the local sandbox)
    amazon_partner_id: str = "Sandb"
    amazon_access_key: str = "sandbox-access-key"  # the Incentives API's AWS key pair
    amazon_secret_key: str = "sandbox-secret-key"
    amazon_region: str = "us-west-2"  # the Far East endpoint's (Japan)
    amazon_timeout_seconds: float = 10.0
    # Signs the console's session cookies. Unset: a random key per process, so a sign-in
    # lasts until the restart and works only with one web process; set it under gunicorn.
    secret_key: str | None = None
    console_session_minutes: int = 480  # a console sign-in expires after this long
    console_secure_cookie: bool = False  # True behind HTTPS: the cookie is never sent in clear

    def app_url(self) -> str:
        """The URL the web logs in with: SQLite has no roles, so the same file."""
        if self.app_database_url:
            return self.app_database_url
        if not self.database_url.startswith(("postgres://", "postgresql")):
            return self.database_url
        from sqlalchemy.engine import make_url
        from settlement.db import APP_ROLE, normalise_url
        url = make_url(normalise_url(self.database_url)).set(
            username=APP_ROLE, password=self.app_database_password)
        return url.render_as_string(hide_password=False)


@lru_cache
def get_settings() -> Settings:
    return Settings()
