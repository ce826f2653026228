"""The `settle` command line: database, tenants, keys, reports and the demo summary."""
from __future__ import annotations

import sys

import click
from pydantic import ValidationError

from settlement.access.service import ROLES, create_key
from settlement.config import get_settings
from settlement.db import session_scope
from settlement.tenants.policy import load_policy
from settlement.tenants.service import TenantNotFound, apply_policy, tenant_by_slug


@click.group()
def main() -> None:
    """Settlement engine for cashback portals."""


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations (PostgreSQL or SQLite, from SETTLE_DATABASE_URL, the owner's
    URL); on PostgreSQL the web's login role settle_app gets the password of its URL."""
    from sqlalchemy.engine import make_url

    from settlement.db import APP_ROLE, app_role_password, normalise_url
    from settlement.migrate import upgrade
    settings = get_settings()
    upgrade(settings.database_url, revision)
    app_url = make_url(normalise_url(settings.app_url()))
    if app_url.get_backend_name() == "postgresql" and app_url.password:
        if app_url.username != APP_ROLE:
            raise click.ClickException(f"the web's URL logs in as {app_url.username}: "
                                       f"it must be {APP_ROLE}, the role upgrade makes")
        app_role_password(settings.database_url, app_url.password)
        click.echo(f"{APP_ROLE}'s password is the one of the web's URL")
    click.echo("database is at " + revision)


@main.group()
def tenant() -> None:
    """Tenants and their policy."""


@tenant.command("apply")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def tenant_apply(path: str) -> None:
    """Create or update a tenant from its policy file (JSON or TOML). Idempotent."""
    try:
        policy = load_policy(path)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(file)"
            click.echo(f"{path}: {where}: {err['msg']}", err=True)
        sys.exit(2)
    except ValueError as exc:
        click.echo(f"{path}: {exc}", err=True)
        sys.exit(2)
    with session_scope() as session:
        try:
            row, changed = apply_policy(session, policy)
        except ValueError as exc:
            click.echo(f"{path}: {exc}", err=True)
            sys.exit(2)
        click.echo(f"tenant {row.slug} {'applied' if changed else 'unchanged'} (id {row.id})")


@main.group()
def key() -> None:
    """API keys."""


@key.command("create")
@click.option("--tenant", "slug", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--label", default=None)
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="the key stops working after this many days (default: never)")
def key_create(slug: str, role: str, label: str | None, expires_in_days: float | None) -> None:
    """Make an API key; it is printed once, alone on the last line."""
    import datetime as dt

    expires_at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=expires_in_days)
                  if expires_in_days else None)
    with session_scope() as session:
        try:
            tenant_row = tenant_by_slug(session, slug)
        except TenantNotFound as exc:
            raise click.ClickException(str(exc))
        secret = create_key(session, tenant_row.id, role, label, expires_at)
    click.echo(f"{role} key for {slug} (store it now: it is not shown again):", err=True)
    click.echo(secret)


from cli import demo as _demo, runs as _runs  # noqa: E402,F401  (register their commands)
from cli import commissions as _commissions  # noqa: E402,F401
from cli import ledger as _ledger  # noqa: E402,F401
from cli import keys as _keys  # noqa: E402,F401
from cli import console as _console  # noqa: E402,F401
from cli import exchanges as _exchanges  # noqa: E402,F401
