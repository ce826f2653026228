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
from settlement.sql import is_postgres


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


# Memory for one transaction's set-based statements over a million rows (a report's lines,
# a run's members): their hash joins, aggregates and sorts stay in memory instead of
# spilling to disk. Per transaction, not per server.
BULK_WORK_MEM = "256MB"


def use_bulk_memory(session: Session) -> None:
    if is_postgres(session.bind):
        session.execute(text(f"SET LOCAL work_mem = '{BULK_WORK_MEM}'"))


# Row-level security (PostgreSQL, revision 0015). Two kinds of connection:
# - the owner's (migrations, workers, the command line: SETTLE_DATABASE_URL). A session for
#   one tenant switches to the application role for its transactions with
#   `settle.tenant_id` set, so the policies still hold our own code to that tenant; the
#   system context ("*") stays the owner, who sees every tenant.
# - the application role's (the web: Settings.app_url()). It logs in as `settle_app`, which
#   can become no one; its only context is `settle.key_hash`, the sha256 of the caller's
#   API key, from which the policies' settle_tenant() finds the tenant. `settle.tenant_id`
#   means nothing to it, so no value it may set widens what it sees.
# Settings go in as bound parameters (psycopg sends them apart from the statement's text):
# pg_stat_activity shows a role its own sessions' statements, and a key's hash written
# into one would be readable there by the role's other sessions.
TENANT_SETTING = "settle.tenant_id"
KEY_SETTING = "settle.key_hash"
APP_ROLE = "settle_app"
SYSTEM = "*"


def tenant_session(engine: Engine, tenant_id: int | str = SYSTEM, **kwargs) -> Session:
    return Session(engine, info={"tenant_id": tenant_id}, **kwargs)


def set_tenant(session: Session, tenant_id: int | str) -> None:
    """Scope an owner's session to one tenant, from now on and for its later transactions.
    The application role cannot be given a tenant: it proves one with a key (bind_key)."""
    if is_postgres(session.bind) and _is_app_login(session.bind):
        raise RuntimeError("the application role's tenant comes from its key: use bind_key")
    session.info["tenant_id"] = tenant_id
    if session.in_transaction() and is_postgres(session.bind):
        _apply_context(session.connection(), session.info)


def bind_key(session: Session, key_hash: str) -> None:
    """Scope the session to the tenant of the API key whose sha256 this is (the web's
    context), from now on and for its later transactions."""
    session.info["key_hash"] = key_hash
    if session.in_transaction() and is_postgres(session.bind):
        _apply_context(session.connection(), session.info)


def _apply_context(connection, info: dict) -> None:
    if _is_app_login(connection.engine):
        connection.exec_driver_sql("SELECT set_config(%(setting)s, %(hash)s, true)",
                                   {"setting": KEY_SETTING, "hash": info.get("key_hash", "")})
        return
    tenant_id = info.get("tenant_id", SYSTEM)
    if tenant_id == SYSTEM or not _has_app_role(connection.engine):
        # The owner, who sees every tenant; with no role to switch to (a database
        # migrated before 0002 by a role that could not create one) the policies bind no one.
        connection.exec_driver_sql("SELECT set_config(%(setting)s, '', true)",
                                   {"setting": TENANT_SETTING})
        return
    connection.exec_driver_sql(
        "SELECT set_config(%(setting)s, %(tenant)s, true), set_config('role', %(role)s, true)",
        {"setting": TENANT_SETTING, "tenant": str(tenant_id), "role": APP_ROLE})


_ROLE_PRESENT: dict[str, bool] = {}
_APP_LOGIN: dict[str, bool] = {}


def _has_app_role(engine: Engine) -> bool:
    key = str(engine.url)
    if key not in _ROLE_PRESENT:
        with engine.connect() as conn:
            _ROLE_PRESENT[key] = bool(conn.exec_driver_sql(
                "SELECT 1 FROM pg_roles WHERE rolname = %(r)s", {"r": APP_ROLE}).scalar())
    return _ROLE_PRESENT[key]


def _is_app_login(engine: Engine) -> bool:
    """Whether this engine logs in as someone who is not the tables' owner (nor a member
    of it): the same test settle_tenant() makes in the database."""
    key = str(engine.url)
    if key not in _APP_LOGIN:
        with engine.connect() as conn:
            _APP_LOGIN[key] = bool(conn.exec_driver_sql(
                "SELECT NOT pg_has_role(session_user, c.relowner, 'MEMBER') "
                "FROM pg_class c WHERE c.oid = to_regclass('public.api_keys')").scalar())
    return _APP_LOGIN[key]


@event.listens_for(Session, "after_begin")
def _tenant_context(session: Session, _transaction, connection) -> None:
    if is_postgres(connection):
        _apply_context(connection, session.info)


def app_role_password(owner_url: str, password: str) -> None:
    """Give the application role the password of its URL (settle db upgrade), as the owner."""
    with make_engine(owner_url).connect() as conn:
        quoted = conn.exec_driver_sql("SELECT quote_literal(%(p)s)", {"p": password}).scalar()
        conn.exec_driver_sql(f"ALTER ROLE {APP_ROLE} PASSWORD {quoted}")  # no parameters in DDL
        conn.commit()
