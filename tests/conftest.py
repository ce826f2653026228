"""Test fixtures: real PostgreSQL, real SQLite, real Redis.

The suite migrates one database of each kind once per run (a PostgreSQL database with a
unique name, a SQLite file in a temporary folder), and every test works in a tenant of its
own, which is how the product isolates data anyway. With REQUIRE_SERVICES=1 a missing
PostgreSQL or Redis fails the run instead of skipping.
"""
from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass, field

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from settlement.access.service import create_key
from settlement.config import Settings
from settlement.db import engine_for
from settlement.migrate import upgrade
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import apply_policy

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _unavailable(what: str, exc: Exception):
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (REQUIRE_SERVICES=1) but unavailable: {exc}")
    pytest.skip(f"{what} unavailable: {exc}")


@pytest.fixture(scope="session")
def pg_url():
    name = f"settle_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means no server
        _unavailable("PostgreSQL", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    engine_for(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'settle.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request):
    """The domain suite runs on both databases."""
    return request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url")


@pytest.fixture
def engine(db_url):
    return engine_for(db_url)


@pytest.fixture(scope="session")
def redis_url():
    try:
        from redis import Redis
        Redis.from_url(REDIS_URL).ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable("Redis", exc)
    return REDIS_URL


@dataclass
class TenantHandle:
    id: int
    slug: str
    currency: str
    keys: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def policy_document(slug: str, currency: str = "USD", **overrides) -> dict:
    doc = {"slug": slug, "name": f"Test {slug}", "currency": currency,
           "timezone": "America/New_York" if currency == "USD" else "Asia/Tokyo",
           "payouts": {"dates": ["02-15", "05-15", "08-15", "11-15"],
                       "minimum": "5.01" if currency == "USD" else "300"}}
    doc.update(overrides)
    return doc


@pytest.fixture
def make_tenant(engine):
    """A fresh tenant with one key per role."""
    def make(currency: str = "USD", **overrides) -> TenantHandle:
        slug = f"t-{uuid.uuid4().hex[:10]}"
        policy = TenantPolicy.model_validate(policy_document(slug, currency, **overrides))
        with Session(engine) as session:
            tenant, _ = apply_policy(session, policy)
            keys = {role: create_key(session, tenant.id, role)
                    for role in ("uploader", "operator", "approver", "admin")}
            session.commit()
            return TenantHandle(tenant.id, slug, currency, keys)
    return make


@pytest.fixture
def tenant(make_tenant):
    return make_tenant()


@pytest.fixture
def app(db_url):
    from api import create_app
    return create_app(Settings(database_url=db_url, redis_url=None))


@pytest.fixture
def client(app):
    return app.test_client()


TODAY = dt.date(2026, 11, 24)
HEADER = ("transaction_id,order_id,member,retailer,category,event_date,sale_amount,"
          "commission_amount,currency,status")


def generic_csv(*rows: str) -> bytes:
    return ("\n".join((HEADER, *rows)) + "\n").encode()


def forget_rq_keys(redis_url: str, prefix: str, job_ids=()) -> None:
    """Remove every key a test's queues (all named with `prefix`) left in Redis, the keys of
    `job_ids` (jobs whose ids do not carry the prefix), and the queues' names from rq's
    global set of queues."""
    from redis import Redis
    redis = Redis.from_url(redis_url)
    doomed = set(redis.scan_iter(match=f"rq:*{prefix}*"))
    for job_id in job_ids:
        doomed |= set(redis.scan_iter(match=f"rq:job:{job_id}*"))
        doomed |= set(redis.scan_iter(match=f"rq:results:{job_id}*"))
    if doomed:
        redis.delete(*doomed)
    ours = [name for name in redis.smembers("rq:queues") if prefix.encode() in name]
    if ours:
        redis.srem("rq:queues", *ours)
    redis.close()
