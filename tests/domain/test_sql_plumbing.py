"""settlement/sql.py: the one place that knows PostgreSQL from SQLite, and what it builds
behaves alike on both."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.db import engine_for
from settlement.sql import (
    ANALYZE_ROWS,
    INSERT_BATCH,
    copy_rows,
    create_temp_table,
    is_postgres,
    plus_days,
    temp_table,
    transaction_lock,
    year_of,
)

SETTLEMENT = Path(__file__).resolve().parents[2] / "settlement"
# The engine's own plumbing, the migrations (frozen per revision) and sql.py itself.
ALLOWED = {SETTLEMENT / "sql.py", SETTLEMENT / "db.py"}


def test_dialect_checks_live_in_sql_module():
    offenders = sorted(
        str(path.relative_to(SETTLEMENT.parent)) for path in SETTLEMENT.rglob("*.py")
        if path not in ALLOWED and "migrations" not in path.relative_to(SETTLEMENT).parts
        and "dialect.name" in path.read_text(encoding="utf-8"))
    assert offenders == []


def _count(session: Session, table: str) -> int:
    return session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_temp_table_replaces_and_indexes(engine):
    with Session(engine) as session:
        temp_table(session, "plumbing_t", "SELECT 1 AS a UNION ALL SELECT 2", {})
        rows = temp_table(session, "plumbing_t", "SELECT :v AS a", {"v": 7},
                          indexes={"plumbing_t_key": "a"})
        assert session.execute(text("SELECT a FROM plumbing_t")).scalars().all() == [7]
        indexes = ("SELECT indexname FROM pg_indexes WHERE tablename = 'plumbing_t'"
                   if is_postgres(session) else
                   "SELECT name FROM sqlite_temp_master WHERE tbl_name = 'plumbing_t' "
                   "AND type = 'index'")
        assert session.execute(text(indexes)).scalars().all() == ["plumbing_t_key"]
        if is_postgres(session):
            assert rows == 1
        session.rollback()


def test_copy_rows_loads_every_row(engine):
    n = INSERT_BATCH * 2 + 3  # more than one batch on SQLite
    with Session(engine) as session:
        create_temp_table(session, "plumbing_rows", "(k BIGINT, label TEXT)")
        copy_rows(session, "plumbing_rows", ("k", "label"), ((k, f"row {k}") for k in range(n)))
        assert session.execute(text(
            "SELECT count(*), sum(k), count(DISTINCT label) FROM plumbing_rows")).one() \
            == (n, n * (n - 1) // 2, n)
        session.rollback()


def test_date_arithmetic_agrees(engine):
    with Session(engine) as session:
        day = "DATE '2024-02-27'" if is_postgres(session) else "'2024-02-27'"
        later, later_bigint, year = session.execute(text(
            f"SELECT {plus_days(session, day, '3')}, "
            f"{plus_days(session, day, 'CAST(3 AS BIGINT)', bigint_days=True)}, "
            f"{year_of(session, day)}")).one()
        assert (str(later), str(later_bigint), year) == ("2024-03-01", "2024-03-01", 2024)
        session.rollback()


def test_transaction_lock_is_held_until_the_transaction_ends(engine):
    with Session(engine) as session:
        transaction_lock(session, 0x5E, 42)
        if is_postgres(session):
            held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' " \
                   "AND pid = pg_backend_pid()"
            assert session.execute(text(held)).scalar_one() == 1
            session.rollback()
            assert session.execute(text(held)).scalar_one() == 0
        session.rollback()


def _analyzed_columns(session: Session, table: str) -> set[str]:
    return set(session.execute(text("SELECT attname FROM pg_stats WHERE tablename = :t"),
                               {"t": table}).scalars())


def test_statistics_as_each_caller_asks(pg_url):
    """PostgreSQL: "always" (or only `columns`), "when_large" above ANALYZE_ROWS, "never"."""
    small = "SELECT 1 AS a, 2 AS b"
    large = f"SELECT n AS a, n AS b FROM generate_series(1, {ANALYZE_ROWS + 1}) n"
    with Session(engine_for(pg_url)) as session:
        temp_table(session, "stats_small", small, {}, analyze="when_large")
        temp_table(session, "stats_large", large, {}, analyze="when_large")
        temp_table(session, "stats_never", large, {}, analyze="never")
        temp_table(session, "stats_always", small, {})
        temp_table(session, "stats_some", small, {}, columns=("b",))
        assert [_analyzed_columns(session, t) for t in
                ("stats_small", "stats_large", "stats_never", "stats_always", "stats_some")] \
            == [set(), {"a", "b"}, set(), {"a", "b"}, {"b"}]
        session.rollback()
