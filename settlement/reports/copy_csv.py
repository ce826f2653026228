"""The generic CSV report, parsed by PostgreSQL itself: the hot path of a clean file.

The body goes through `COPY ... (FORMAT csv)` into a temporary table of text columns (the
database's C parser, no Python per line), then ONE statement checks and converts every
line into `incoming`. The check is the Python fast path's (formats/generic.py `_fast_path`),
never looser: a file it cannot vouch for line by line is handed back, the savepoint is
rolled back, and the Python parser takes the file and names every fault by line and field.

What hands a file back: a body with a double quote anywhere (PostgreSQL and Python's csv
read a quote inside an unquoted field differently), a header that is not plain, a line the
COPY refuses (not UTF-8, NUL, wrong field count, blank line, mixed line endings), a record
count that differs from the line count (a `\\.` line would end a COPY early), or any line
the check refuses. So both paths accept exactly the same files into the same rows.
"""
from __future__ import annotations

import csv
from typing import Iterable, Iterator

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.reports.formats.base import MAX_ID_CHARS, STATUSES, ParseContext
from settlement.reports.formats.fields import BOM
from settlement.reports.formats.generic import COLUMNS
from settlement.reports.staging import INCOMING_COLUMNS, create_incoming

# The raw table's columns: the generic columns, suffixed so none is an SQL keyword.
_RAW = {name: f"{name}_raw" for name in COLUMNS}


class _HandBack(Exception):
    """The body is not one this path vouches for: the Python parser takes it."""


def _plain(column: str, max_chars: int, required: bool) -> str:
    """A text field the Python path would take unchanged (it strips whitespace: here the
    first and last characters must be visible ASCII, so there is nothing to strip)."""
    empty = f"{column} IS NULL" if not required else "false"
    return (f"({empty} OR (length({column}) <= {max_chars} "
            f"AND {column} ~ '^[!-~](.*[!-~])?$'))")


def _amount_ok(column: str, digits: int) -> str:
    fraction = rf"(\.[0-9]{{{digits}}})?" if digits else ""
    # "-0" and "-0.00" are refused by the Python path (a negative zero is a typo).
    return (f"({column} ~ '^-?[0-9]{{1,12}}{fraction}$' "
            f"AND {column} !~ '^-0+(\\.0+)?$')")


def _amount_value(column: str, digits: int) -> str:
    if not digits:
        return f"CAST({column} AS BIGINT)"
    return (f"CASE WHEN strpos({column}, '.') > 0 "
            f"THEN CAST(replace({column}, '.', '') AS BIGINT) "
            f"ELSE CAST({column} AS BIGINT) * {10 ** digits} END")


def _date_ok(column: str) -> str:
    """An ISO calendar date that exists (so that the cast below cannot fail)."""
    year, month, day = (f"CAST(substr({column}, {start}, {n}) AS INTEGER)"
                        for start, n in ((1, 4), (6, 2), (9, 2)))
    leap = f"({year} % 4 = 0 AND ({year} % 100 <> 0 OR {year} % 400 = 0))"
    return f"""({column} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' AND {year} > 0
      AND {month} BETWEEN 1 AND 12
      AND {day} BETWEEN 1 AND CASE {month} WHEN 2 THEN CASE WHEN {leap} THEN 29 ELSE 28 END
                                WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30
                                ELSE 31 END)"""


def _convert_sql(ctx: ParseContext) -> str:
    """incoming's rows from raw_csv; a line the check refuses gets err_code 'hand_back'."""
    r = _RAW
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    ok = " AND ".join([
        _plain(r["transaction_id"], MAX_ID_CHARS, True),
        _plain(r["order_id"], MAX_ID_CHARS, False),
        _plain(r["member"], MAX_ID_CHARS, False),
        _plain(r["retailer"], MAX_ID_CHARS, True),
        # Lower-cased below: ASCII only, so PostgreSQL's lower() is Python's.
        f"({r['category']} IS NULL OR (length({r['category']}) <= 100 "
        f"AND {r['category']} ~ '^[!-~]([ -~]*[!-~])?$'))",
        f"{r['status']} IN ({statuses})",
        f"{r['currency']} = :currency",
        f"{r['event_date']} IS NOT NULL", _date_ok(r["event_date"]),
        f"{r['sale_amount']} IS NOT NULL", _amount_ok(r["sale_amount"], ctx.digits),
        f"{r['commission_amount']} IS NOT NULL",
        _amount_ok(r["commission_amount"], ctx.digits),
    ])
    sale, commission = (_amount_value(r["sale_amount"], ctx.digits),
                        _amount_value(r["commission_amount"], ctx.digits))
    return f"""
      INSERT INTO incoming ({', '.join(INCOMING_COLUMNS)})
      SELECT line, transaction_id, order_id, member, retailer, category, event_date, sale,
             commission, currency, status, NULL, NULL,
             CASE WHEN event_date IS NULL OR event_date > :latest OR (sale < 0 AND commission > 0)
                  THEN 'hand_back' END, NULL
      FROM (
        SELECT line, {r['transaction_id']} AS transaction_id, {r['order_id']} AS order_id,
               {r['member']} AS member, {r['retailer']} AS retailer,
               coalesce(lower({r['category']}), '') AS category,
               {r['currency']} AS currency, {r['status']} AS status,
               CASE WHEN ok THEN CAST({r['event_date']} AS DATE) END AS event_date,
               CASE WHEN ok THEN {sale} END AS sale,
               CASE WHEN ok THEN {commission} END AS commission
        FROM (SELECT *, {ok} AS ok FROM raw_csv) checked
      ) converted"""


def _header(first_line: bytes) -> list[str] | None:
    """The header's column names in file order, or None if the header is not plain."""
    try:
        line = first_line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return None
    if '"' in line or "\r" in line or "\x00" in line:
        return None
    names = [name.strip().lower() for name in next(csv.reader([line]))]
    if sorted(names) != sorted(COLUMNS):
        return None  # missing, unknown or repeated columns: the Python path explains
    return names


class _Body:
    """The chunks after the header line, counting the lines they hold."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self.header: list[str] | None = None
        self.lines = 0
        self._last = b"\n"

    def open(self) -> bytes:
        """Read up to the end of the header line; the rest of that chunk is returned."""
        buffered = b""
        for chunk in self._chunks:
            buffered += chunk
            if b"\n" in buffered or len(buffered) > 64 * 1024:
                break
        if buffered.startswith(BOM):
            buffered = buffered[len(BOM):]
        end = buffered.find(b"\n")
        self.header = _header(buffered[:end + 1]) if end >= 0 else None
        if self.header is None:
            raise _HandBack()
        return buffered[end + 1:]

    def data(self, rest: bytes) -> Iterator[bytes]:
        if rest:
            yield self._counted(rest)
        for chunk in self._chunks:
            if chunk:
                yield self._counted(chunk)

    def _counted(self, chunk: bytes) -> bytes:
        if b'"' in chunk:
            raise _HandBack()
        self.lines += chunk.count(b"\n")
        self._last = chunk[-1:]
        return chunk

    @property
    def records(self) -> int:
        """How many records a COPY of the data must yield: one per line."""
        return self.lines + (0 if self._last == b"\n" else 1)


def stage_in_database(session: Session, chunks: Iterable[bytes], ctx: ParseContext) -> bool:
    """Stage a generic CSV body into `incoming` through COPY. False (and nothing changed)
    when the body is not one this path vouches for; the caller then parses it in Python."""
    try:
        with session.begin_nested():
            _copy_and_convert(session, chunks, ctx)
    except _HandBack:
        return False
    return True


def _copy_and_convert(session: Session, chunks: Iterable[bytes], ctx: ParseContext) -> None:
    body = _Body(chunks)
    rest = body.open()
    create_incoming(session)
    session.execute(text("DROP TABLE IF EXISTS pg_temp.raw_csv"))
    session.execute(text("DROP SEQUENCE IF EXISTS pg_temp.raw_csv_line"))
    # Line 1 is the header; each record is one line (checked below), so its number is
    # the order COPY reads it in.
    session.execute(text("CREATE TEMP SEQUENCE raw_csv_line START 2 CACHE 10000"))
    columns = ", ".join(f"{_RAW[name]} TEXT" for name in COLUMNS)
    session.execute(text(f"CREATE TEMP TABLE raw_csv (line BIGINT NOT NULL DEFAULT "
                         f"nextval('raw_csv_line'), {columns}) ON COMMIT DROP"))
    cursor = session.connection().connection.driver_connection.cursor()
    order = ", ".join(_RAW[name] for name in body.header)
    try:
        with cursor.copy(f"COPY raw_csv ({order}) FROM STDIN WITH (FORMAT csv)") as copy:
            for chunk in body.data(rest):
                copy.write(chunk)
        copied = cursor.rowcount
    except psycopg.errors.DataError as exc:
        # Not UTF-8, a NUL byte, a wrong field count, a blank line: the line-by-line parser
        # says which line and why.
        raise _HandBack() from exc
    if copied != body.records:
        raise _HandBack()
    session.execute(text(_convert_sql(ctx)),
                    {"currency": ctx.currency, "latest": ctx.today})
    if session.execute(text("SELECT EXISTS (SELECT 1 FROM incoming "
                            "WHERE err_code IS NOT NULL)")).scalar_one():
        raise _HandBack()
    session.execute(text("DROP TABLE raw_csv"))
    session.execute(text("DROP SEQUENCE raw_csv_line"))
    session.execute(text("ANALYZE incoming"))
