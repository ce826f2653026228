"""Load parsed lines into the temporary table `incoming`, in bulk.

PostgreSQL gets them through COPY, streamed as they are parsed; SQLite through batched
executemany. Either way no line costs a round trip, and memory stays flat.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.db import use_bulk_memory
from settlement.reports.formats.base import LineError, ParsedLine
from settlement.sql import analyze_table, copy_rows, create_temp_table, is_postgres

# `sale` and `commission` are network units (ten-thousandths of the major unit, as parsed).
INCOMING_COLUMNS = ("line", "transaction_id", "order_id", "member", "retailer", "category",
                    "event_date", "sale", "commission", "currency", "status", "original_txn",
                    "err_field", "err_code", "err_message")
# Parse errors travel in the same stream as good lines (err_code set, the rest empty), so
# that one COPY carries everything and a file of a million bad lines stays out of memory.
_DDL = """(line BIGINT, transaction_id TEXT, order_id TEXT, member TEXT, retailer TEXT,
  category TEXT, event_date DATE, sale BIGINT, commission BIGINT, currency TEXT,
  status TEXT, original_txn TEXT, err_field TEXT, err_code TEXT, err_message TEXT,
  confirm_after DATE)"""


def _minor_ddl(minor_scale: int) -> str:
    minor = "sale_minor BIGINT, commission_minor BIGINT, "
    computed = (f"sale BIGINT GENERATED ALWAYS AS (sale_minor * {minor_scale}) STORED, "
                f"commission BIGINT GENERATED ALWAYS AS (commission_minor * {minor_scale}) "
                "STORED")
    category = ("category_as_sent TEXT, "
                "category TEXT GENERATED ALWAYS AS (lower(category_as_sent)) STORED")
    return (_DDL.replace("sale BIGINT, commission BIGINT", minor + computed)
            .replace("category TEXT", category))


def create_incoming(session: Session, minor_scale: int | None = None) -> None:
    """`minor_scale` (PostgreSQL only): the amounts are written in the currency's minor units
    to `sale_minor` and `commission_minor`, and `sale` and `commission` are computed from
    them in network units (minor units times `minor_scale`) as each row is stored, which
    costs nothing like a second pass; so is `category`, lower-cased from
    `category_as_sent`."""
    # (temp_buffers would help too, but PostgreSQL refuses to change it once a pooled
    # connection has used a temporary table.)
    use_bulk_memory(session)
    in_minor_units = minor_scale is not None and is_postgres(session)
    create_temp_table(session, "incoming",
                      _minor_ddl(int(minor_scale)) if in_minor_units else _DDL)


def _rows(items: Iterable[ParsedLine | LineError], as_text_dates: bool) -> Iterator[tuple]:
    for item in items:
        if type(item) is LineError:
            yield (item.line, None, None, None, None, None, None, None, None, None, None, None,
                   item.field, item.code, item.message)
            continue
        (line, txn, order, member, retailer, category, event_date, sale, commission,
         currency, status, original) = item
        yield (line, txn, order, member, retailer, category or "",
               event_date.isoformat() if as_text_dates else event_date,
               sale, commission, currency, status, original, None, None, None)


def stage(session: Session, items: Iterable[ParsedLine | LineError]) -> None:
    """Stream parsed lines and parse errors into `incoming`."""
    create_incoming(session)
    copy_rows(session, "incoming", INCOMING_COLUMNS,
              _rows(items, as_text_dates=not is_postgres(session)))
    analyze_table(session, "incoming")


def take_parse_errors(session: Session, tenant_id: int, report_id: int) -> int:
    """Move the parse errors from `incoming` to report_errors; returns how many. A field
    name longer than report_errors.field (64) is cut there: the message names it whole."""
    moved = session.execute(text("""
      INSERT INTO report_errors (tenant_id, report_id, seq, line, field, code, message)
      SELECT :t, :r, row_number() OVER (ORDER BY line, err_field), line,
             substr(err_field, 1, 64), err_code, err_message
      FROM incoming WHERE err_code IS NOT NULL"""), {"t": tenant_id, "r": report_id}).rowcount
    if moved:
        session.execute(text("DELETE FROM incoming WHERE err_code IS NOT NULL"))
    return moved
