"""Is this process fit to serve? The database answers, Redis answers (when jobs go to rq)
and the database's schema is the one this code was written for (migrations at head)."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import text
from sqlalchemy.engine import Engine

from settlement.migrate import alembic_config

REDIS_TIMEOUT_SECONDS = 2.0


@lru_cache(maxsize=1)
def migration_heads() -> frozenset[str]:
    from alembic.script import ScriptDirectory
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def check_database(engine: Engine) -> tuple[str, str | None]:
    """("ok", None), or the failed check's name and why: the database first, since the
    schema check needs it."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            applied = {row[0] for row in conn.execute(text(
                "SELECT version_num FROM alembic_version"))}
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return "database", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    if applied != migration_heads():
        return "migrations", (f"database at {sorted(applied) or 'no revision'}, "
                              f"code expects {sorted(migration_heads())}: run settle db upgrade")
    return "ok", None


def check_redis(url: str | None) -> str | None:
    """None when Redis answers or is not used; otherwise why not."""
    if not url:
        return None
    from redis import Redis
    try:
        client = Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


def readiness(engine: Engine, redis_url: str | None) -> dict:
    """{"ready": bool, "checks": {name: "ok" | "not used" | reason}}."""
    checks = {"database": "ok", "migrations": "ok"}
    failed, reason = check_database(engine)
    if failed == "database":
        checks.update(database=reason, migrations="not checked")
    elif failed == "migrations":
        checks["migrations"] = reason
    redis_problem = check_redis(redis_url)
    checks["redis"] = "not used" if not redis_url else (redis_problem or "ok")
    ready = all(v in ("ok", "not used") for v in checks.values())
    return {"ready": ready, "checks": checks}
