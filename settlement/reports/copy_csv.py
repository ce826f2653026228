"""The generic CSV report, the hot path of a clean file: checked a chunk at a time by one
regular expression, and parsed and typed by PostgreSQL's COPY straight into `incoming`.

The expression is the Python fast path's check (formats/generic.py `_fast_path`) written for
whole lines, never looser; with the amounts' decimal points dropped, COPY reads minor units
as integers. A body it cannot vouch for line by line is handed back: the
savepoint is rolled back and the Python parser takes the file and names every fault by line
and field. What hands a body back: a double quote anywhere (PostgreSQL and Python's csv read
a quote inside an unquoted field differently), a header that is not plain, any line the
expression does not match, a line COPY refuses (not UTF-8, a date that does not exist, mixed
line endings), a record count that differs from the line count, an event after the report's
date, a sale and commission of opposite signs, a report whose total is past its bound, and
what the bounds of reports/bounds.py would refuse or rewrite (an amount of ten digits or
more, an event before 2000, a control character or any non-ASCII byte in a line: ids are
NFKC-normalised in Python). So both paths accept exactly the same files into the same rows.
"""
from __future__ import annotations

import csv
import itertools
import re
from typing import Iterable, Iterator

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.money import network_scale
from settlement.reports.bounds import EARLIEST_EVENT_DATE, MAX_REPORT_AMOUNT
from settlement.reports.formats.base import MAX_ID_CHARS, STATUSES, ParseContext
from settlement.reports.formats.fields import BOM
from settlement.reports.formats.generic import COLUMNS
from settlement.reports.pipeline import send_behind
from settlement.reports.staging import create_incoming
from settlement.sql import analyze_table, driver_cursor, temp_table

# incoming's column for each generic column.
# The amounts are read in minor units; `incoming` computes their network units (see
# staging.create_incoming).
_TARGET = {"transaction_id": "transaction_id", "order_id": "order_id", "member": "member",
           "retailer": "retailer", "category": "category_as_sent", "event_date": "event_date",
           "sale_amount": "sale_minor", "commission_amount": "commission_minor",
           "currency": "currency", "status": "status"}
# Python strips whitespace from text fields: here their first and last characters must be
# visible ASCII, so there is nothing to strip (and the length in bytes bounds the length in
# characters). Interior bytes may be anything but the CSV's own; COPY checks the UTF-8.
# Where amounts have decimals, no other field may hold a point: the amounts' points are
# then dropped from the whole chunk at once, and COPY reads minor units as integers.
_EDGE = rb'[!#-+\--~]'  # visible ASCII but the comma and the double quote
_INNER = rb'[^,\r\n"\x01-\x1f\x7f\x00]'  # no control character (refused in ids)
MAX_LINE_BYTES = 64 * 1024  # a longer line is the Python path's to report


class _HandBack(Exception):
    """The body is not one this path vouches for: the Python parser takes it."""


def _field(name: str, ctx: ParseContext) -> bytes:
    """The expression one clean value of the column matches."""
    edge, inner = _EDGE, _INNER
    if ctx.digits:
        edge, inner = edge.replace(rb"\--~", rb"\-/-~"), inner.replace(rb"\x00", rb"\x00.")
    identifier = edge + rb"(?:" + inner + rb"{0,%d}" % (MAX_ID_CHARS - 2) + edge + rb")?"
    if name in ("transaction_id", "retailer"):
        return identifier
    if name in ("order_id", "member"):
        return rb"(?:" + identifier + rb")?"
    if name == "category":  # lower-cased by PostgreSQL: ASCII only, so lower() is Python's
        middle = rb"[ !#-+\--~]".replace(rb"\--~", rb"\-/-~" if ctx.digits else rb"\--~")
        return rb"(?:" + edge + rb"(?:" + middle + rb"{0,98}" + edge + rb")?)?"
    if name == "event_date":
        return rb"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    if name in ("sale_amount", "commission_amount"):
        # A minus sign only before a non-zero amount: "-0.00" is refused by the Python path.
        # Exactly the currency's decimals, so that dropping the point gives minor units;
        # a network's finer amounts (up to 4 decimals) are the Python path's.
        # At most 9 whole digits: a larger amount may be past bounds.MAX_LINE_AMOUNT.
        whole = rb"(?:-(?=[0-9.]*[1-9]))?[0-9]{1,9}"
        return whole + (rb"\.[0-9]{%d}" % ctx.digits if ctx.digits else b"")
    if name == "currency":
        return re.escape(ctx.currency.encode())
    if name == "status":
        return rb"(?:" + b"|".join(s.encode() for s in STATUSES) + rb")"
    raise ValueError(name)


def _line_expression(header: list[str], ctx: ParseContext) -> re.Pattern:
    """The expression one whole clean line matches."""
    fields = b",".join(_field(name, ctx) for name in header)
    return re.compile(rb"^" + fields + rb"\r?\n", re.M)


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
    """The chunks after the header line, checked and rewritten line by line."""

    def __init__(self, chunks: Iterable[bytes], digits: int):
        self._chunks = iter(chunks)
        self._digits = digits
        self.header: list[str] | None = None
        self.lines = 0

    def open(self) -> bytes:
        """Read up to the end of the header line; the rest of that chunk is returned."""
        buffered = b""
        for chunk in self._chunks:
            buffered += chunk
            if b"\n" in buffered or len(buffered) > MAX_LINE_BYTES:
                break
        if buffered.startswith(BOM):
            buffered = buffered[len(BOM):]
        end = buffered.find(b"\n")
        self.header = _header(buffered[:end + 1]) if end >= 0 else None
        if self.header is None:
            raise _HandBack()
        return buffered[end + 1:]

    def rewritten(self, rest: bytes, ctx: ParseContext) -> Iterator[bytes]:
        """The data lines with integer amounts, whole lines at a time."""
        expression = _line_expression(self.header, ctx)
        carry = b""
        for chunk in itertools.chain([rest], self._chunks):
            carry += chunk
            cut = carry.rfind(b"\n") + 1
            if cut:
                yield self._rewrite(carry[:cut], expression)
                carry = carry[cut:]
            if len(carry) > MAX_LINE_BYTES:
                raise _HandBack()
        if carry:
            yield self._rewrite(carry + b"\n", expression)

    def _rewrite(self, lines: bytes, expression: re.Pattern) -> bytes:
        if b'"' in lines or not lines.isascii():
            raise _HandBack()
        # Each match is one whole line (anchored at a line start, ending with its newline):
        # as many matches as lines means every line matched.
        _, matched = expression.subn(b"", lines)
        if matched != lines.count(b"\n"):
            raise _HandBack()
        self.lines += matched
        return lines.replace(b".", b"") if self._digits else lines


def stage_in_database(session: Session, chunks: Iterable[bytes], ctx: ParseContext) -> bool:
    """Stage a generic CSV body into `incoming` through COPY, its amounts in minor units
    (`sale_minor`, `commission_minor`), and its distinct (retailer, category, event_date)
    into `sent_keys`. False (and nothing changed) when the body is not one this path
    vouches for; the caller then parses it in Python."""
    try:
        with session.begin_nested():
            _copy(session, chunks, ctx)
    except _HandBack:
        return False
    return True


def _copy(session: Session, chunks: Iterable[bytes], ctx: ParseContext) -> None:
    body = _Body(chunks, ctx.digits)
    rest = body.open()
    create_incoming(session, minor_scale=network_scale(ctx.digits))
    # Line 1 is the header and each record is one line (checked below), so a line's
    # number is the order COPY reads it in.
    session.execute(text("DROP SEQUENCE IF EXISTS pg_temp.incoming_line"))
    session.execute(text("CREATE TEMP SEQUENCE incoming_line START 2 CACHE 10000"))
    session.execute(text("ALTER TABLE incoming ALTER COLUMN line "
                         "SET DEFAULT nextval('incoming_line')"))
    cursor = driver_cursor(session)
    columns = ", ".join(_TARGET[name] for name in body.header)
    try:
        with cursor.copy(f"COPY incoming ({columns}) FROM STDIN WITH "
                         "(FORMAT csv, FORCE_NOT_NULL (category_as_sent))") as copy:
            # The database parses one piece while the next is checked here.
            send_behind(body.rewritten(rest, ctx), copy.write)
        copied = cursor.rowcount
    except psycopg.errors.DataError as exc:
        # Not UTF-8, a date that does not exist, mixed line endings: the line-by-line
        # parser says which line and why.
        raise _HandBack() from exc
    if copied != body.lines:
        raise _HandBack()
    # One pass for what the expression cannot see: a line's date and signs, and the total
    # of the report (bounds.py); any of them out of bounds hands the body back. The same
    # pass leaves the distinct keys the classification starts from (`sent_keys`,
    # commissions/lifecycle.py), which would otherwise read every line again.
    temp_table(session, "sent_keys", """
      SELECT retailer, category, event_date,
             bool_or(event_date > :latest OR event_date < :earliest
                     OR (sale < 0 AND commission > 0) OR (sale > 0 AND commission < 0))
               AS out_of_bounds,
             sum(abs(sale)) AS sale_total, sum(abs(commission)) AS commission_total
      FROM incoming GROUP BY retailer, category, event_date""",
               {"latest": ctx.today, "earliest": EARLIEST_EVENT_DATE}, analyze="never")
    if session.execute(text(
            "SELECT bool_or(out_of_bounds) OR greatest(sum(sale_total), sum(commission_total)) "
            "> :report_max FROM sent_keys"), {"report_max": MAX_REPORT_AMOUNT}).scalar():
        raise _HandBack()
    session.execute(text("DROP SEQUENCE incoming_line CASCADE"))
    analyze_table(session, "incoming")
