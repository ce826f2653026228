"""Engines and sessions. One engine per URL; SQLite gets the pragmas that make it a safe
embedded default (foreign keys, WAL, a busy timeout instead of 'database is locked')."""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from settlement.config import get_settings


def normalise_url(url: str) -> str:
    # psycopg 3 is the driver; accept the plain postgres URLs people paste.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine() -> Engine:
    return engine_for(get_settings().database_url)


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(bind) -> bool:
    return bind.dialect.name == "postgresql"


# Memory for one transaction's set-based statements over a million rows (a report's lines,
# a run's members): their hash joins, aggregates and sorts stay in memory instead of
# spilling to disk. Per transaction, not per server.
BULK_WORK_MEM = "256MB"


def use_bulk_memory(session: Session) -> None:
    if is_postgres(session.bind):
        session.execute(text(f"SET LOCAL work_mem = '{BULK_WORK_MEM}'"))


# Row-level security (PostgreSQL): every transaction of a Session runs as the application
# role with `settle.tenant_id` set from `session.info["tenant_id"]`; the policies of
# migration 0002 show a tenant's rows only to its own context. "*" is the system context
# (command line, migrations, authentication), which sees every tenant.
TENANT_SETTING = "settle.tenant_id"
APP_ROLE = "settle_app"
SYSTEM = "*"


def tenant_session(engine: Engine, tenant_id: int | str = SYSTEM, **kwargs) -> Session:
    return Session(engine, info={"tenant_id": tenant_id}, **kwargs)


def set_tenant(session: Session, tenant_id: int | str) -> None:
    """Scope the session to one tenant, from now on and for its later transactions."""
    session.info["tenant_id"] = tenant_id
    if session.in_transaction() and is_postgres(session.bind):
        _apply_context(session.connection(), tenant_id)


def _apply_context(connection, tenant_id) -> None:
    role = APP_ROLE if _has_app_role(connection.engine) else None
    connection.exec_driver_sql(
        "SELECT set_config(%(setting)s, %(tenant)s, true)"
        + (", set_config('role', %(role)s, true)" if role else ""),
        {"setting": TENANT_SETTING, "tenant": str(tenant_id), "role": role})


_ROLE_PRESENT: dict[str, bool] = {}


def _has_app_role(engine: Engine) -> bool:
    key = str(engine.url)
    if key not in _ROLE_PRESENT:
        with engine.connect() as conn:
            _ROLE_PRESENT[key] = bool(conn.exec_driver_sql(
                "SELECT 1 FROM pg_roles WHERE rolname = %(r)s", {"r": APP_ROLE}).scalar())
    return _ROLE_PRESENT[key]


@event.listens_for(Session, "after_begin")
def _tenant_context(session: Session, _transaction, connection) -> None:
    if connection.dialect.name == "postgresql":
        _apply_context(connection, session.info.get("tenant_id", SYSTEM))
