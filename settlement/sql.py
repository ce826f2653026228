"""Database plumbing: what PostgreSQL and SQLite do differently, in one place.

The domain modules state their rules as SQL both databases run. What has to differ is
here: temporary tables (dropped at commit on PostgreSQL, where they also get statistics),
bulk loading (COPY, or batched executemany), date arithmetic, transaction locks (SQLite
has one writer at a time and needs none). Nothing here knows about commissions or runs.
"""
from __future__ import annotations

from typing import Iterable, Literal, Mapping

from sqlalchemy import TableClause, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

# Temporary tables larger than this get statistics (PostgreSQL): one never analyzed is
# planned as ten pages or so, right for a small one only.
ANALYZE_ROWS = 1000
# Rows per executemany when loading SQLite: one round trip each, memory stays flat.
INSERT_BATCH = 5000

Analyze = Literal["always", "when_large", "never"]


def is_postgres(db: Session | Engine | Connection) -> bool:
    bind = db.get_bind() if isinstance(db, Session) else db
    return bind.dialect.name == "postgresql"


def _temp_schema(session: Session) -> str:
    return "pg_temp" if is_postgres(session) else "temp"


def drop_temp_tables(session: Session, *names: str) -> None:
    schema = _temp_schema(session)
    for name in names:
        session.execute(text(f"DROP TABLE IF EXISTS {schema}.{name}"))


def _on_commit_drop(session: Session) -> str:
    return " ON COMMIT DROP" if is_postgres(session) else ""


def create_temp_table(session: Session, name: str, columns_ddl: str) -> None:
    """An empty temporary table of `columns_ddl` ("(a BIGINT, b TEXT)"), replacing any of
    that name; PostgreSQL drops it at commit."""
    drop_temp_tables(session, name)
    session.execute(text(f"CREATE TEMP TABLE {name} {columns_ddl}{_on_commit_drop(session)}"))


def temp_table(session: Session, name: str, select_sql: str, params: dict, *,
               analyze: Analyze = "always", columns: tuple[str, ...] = (),
               indexes: Mapping[str, str] | None = None) -> int | None:
    """A temporary table holding what `select_sql` selects, replacing any of that name
    (PostgreSQL drops it at commit). `indexes` (index name -> column) are built before the
    statistics. `analyze` (PostgreSQL): "always", "when_large" (more than ANALYZE_ROWS
    rows), or "never" for a table read only by statements that have no plan to choose;
    `columns` limits ANALYZE to the columns its readers filter and group on (ANALYZE
    computes each column's statistics from a sample of 30,000 rows). Returns the row count
    the database reports (None or negative when it reports none)."""
    drop_temp_tables(session, name)
    rows = session.execute(text(f"CREATE TEMP TABLE {name}{_on_commit_drop(session)} AS "
                                f"{select_sql}"), params).rowcount
    for index, column in (indexes or {}).items():
        session.execute(text(f"CREATE INDEX {index} ON {name} ({column})"))
    large = rows is None or rows < 0 or rows > ANALYZE_ROWS
    if analyze == "always" or (analyze == "when_large" and large):
        analyze_table(session, name, columns)
    return rows


def analyze_table(session: Session, name: str, columns: tuple[str, ...] = ()) -> None:
    """Statistics for the planner (PostgreSQL; SQLite plans without them)."""
    if is_postgres(session):
        listed = f" ({', '.join(columns)})" if columns else ""
        session.execute(text(f"ANALYZE {name}{listed}"))


def driver_cursor(session: Session):
    """The driver's own cursor on the session's connection (psycopg's, for COPY)."""
    return session.connection().connection.driver_connection.cursor()


def copy_rows(session: Session, table: str, columns: tuple[str, ...],
              rows: Iterable[tuple]) -> None:
    """Stream `rows` into `table`: COPY on PostgreSQL, executemany in batches of
    INSERT_BATCH on SQLite. Either way no row costs a round trip."""
    if is_postgres(session):
        with driver_cursor(session).copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            write = copy.write_row
            for row in rows:
                write(row)
        return
    insert = text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                  f"({', '.join(':' + c for c in columns)})")
    batch: list[dict] = []
    for row in rows:
        batch.append(dict(zip(columns, row)))
        if len(batch) >= INSERT_BATCH:
            session.execute(insert, batch)
            batch.clear()
    if batch:
        session.execute(insert, batch)


def insert_or_skip(session: Session, table: TableClause):
    """An INSERT into `table` that can skip rows already there
    (`.on_conflict_do_nothing(...)`): each database's own."""
    return (postgresql if is_postgres(session) else sqlite).insert(table)


def plus_days(session: Session, day: str, days: str, *, bigint_days: bool = False) -> str:
    """SQL: the date `day` plus `days` days. PostgreSQL adds only an INTEGER to a DATE:
    `bigint_days` casts an expression that may be BIGINT."""
    if is_postgres(session):
        return f"({day} + CAST({days} AS INTEGER))" if bigint_days else f"({day} + {days})"
    return f"date({day}, '+' || {days} || ' days')"


def year_of(session: Session, day: str) -> str:
    """SQL: the year of the date `day`, an integer."""
    if is_postgres(session):
        return f"CAST(EXTRACT(YEAR FROM {day}) AS INTEGER)"
    return f"CAST(strftime('%Y', {day}) AS INTEGER)"


def transaction_lock(session: Session, *keys: int) -> None:
    """Wait for, then hold until the transaction ends, the advisory lock of `keys` (one
    bigint, or two ints) on PostgreSQL; SQLite has one writer at a time already."""
    if is_postgres(session):
        names = [f"k{n}" for n in range(len(keys))]
        arguments = ", ".join(":" + name for name in names)
        session.execute(text(f"SELECT pg_advisory_xact_lock({arguments})"),
                        dict(zip(names, keys)))
