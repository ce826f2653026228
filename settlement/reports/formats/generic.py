"""The generic report format: the columns of DESIGN.md, as CSV, a JSON array or NDJSON.

CSV is the hot path (a million lines per upload), so its loop works on positional rows and
touches each field once.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Iterable, Iterator

from settlement.money import NETWORK_DIGITS
from settlement.reports.formats import fields as f
from settlement.reports.formats.base import (
    MAX_ID_CHARS,
    LineError,
    ParseContext,
    ParsedLine,
    ReportFormatError,
)

COLUMNS = ("transaction_id", "order_id", "member", "retailer", "category", "event_date",
           "sale_amount", "commission_amount", "currency", "status")
REQUIRED = ("transaction_id", "retailer", "event_date", "sale_amount", "commission_amount",
            "currency", "status")
MAX_JSON_BYTES = 64 * 1024 * 1024


def check_record(line: int, get, ctx: ParseContext) -> ParsedLine | list[LineError]:
    """Validate one record whose fields `get(name)` returns; every bad field is listed."""
    errors: list[LineError] = []
    txn = f.identifier(get("transaction_id"), line, "transaction_id", errors)
    order = f.identifier(get("order_id"), line, "order_id", errors, required=False)
    member = f.identifier(get("member"), line, "member", errors, required=False)
    retailer = f.identifier(get("retailer"), line, "retailer", errors)
    category = f.text(get("category"), line, "category", errors, required=False, max_chars=100)
    event_date = f.date(get("event_date"), line, "event_date", ctx, errors)
    sale = f.amount(get("sale_amount"), line, "sale_amount", ctx, errors,
                    json_number_ok=False)
    commission = f.amount(get("commission_amount"), line, "commission_amount", ctx, errors,
                          json_number_ok=False)
    currency = f.currency(get("currency"), line, "currency", ctx, errors, upper_only=True)
    status = f.status(get("status"), line, "status", f.GENERIC_STATUSES, errors)
    f.sign_rule(line, sale, commission, errors)
    if errors:
        return errors
    return ParsedLine(line, txn, order, member, retailer,
                      category.lower() if category else None, event_date, sale, commission,
                      currency, status)


def _header(row: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in row]
    problems = []
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        problems.append(LineError(1, unknown[0], "unknown_column",
                                  f"unknown column(s) {', '.join(map(repr, unknown))}; "
                                  f"expected {', '.join(COLUMNS)}"))
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(LineError(1, dupes[0], "duplicate_column",
                                  f"column(s) {', '.join(dupes)} appear more than once"))
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        problems.append(LineError(1, missing[0], "missing_column",
                                  f"missing column(s) {', '.join(missing)}"))
    if problems:
        raise ReportFormatError(problems)
    return {name: i for i, name in enumerate(names)}


def _fast_path(header: dict[str, int], ctx: ParseContext):
    """A row checker for the common case (every column present, clean values), about three
    times faster than check_record. It returns None for anything else, so the careful path
    decides and explains; both accept exactly the same lines."""
    if any(c not in header for c in COLUMNS):
        return None
    (i_txn, i_order, i_member, i_retailer, i_category, i_date, i_sale, i_commission,
     i_currency, i_status) = (header[c] for c in COLUMNS)
    amount = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,%d})?\Z" % NETWORK_DIGITS, re.ASCII).match
    # Ten-thousandths per unit of the last decimal written, by how many decimals there are.
    scale_of = [10 ** (NETWORK_DIGITS - n) for n in range(NETWORK_DIGITS + 1)]
    statuses = f.GENERIC_STATUSES
    currency = ctx.currency
    today = ctx.today
    fromisoformat = dt.date.fromisoformat

    def money(text: str) -> int | None:
        if amount(text) is None:
            return None
        point = text.find(".")
        if point < 0:
            value = int(text) * scale_of[0]
        else:
            value = int(text[:point] + text[point + 1:]) * scale_of[len(text) - point - 1]
        if value == 0 and text[0] == "-":
            return None
        return value

    def check(line: int, row: list[str]) -> ParsedLine | None:
        txn, order, member, retailer, category = (
            row[i_txn].strip(), row[i_order].strip(), row[i_member].strip(),
            row[i_retailer].strip(), row[i_category].strip())
        if not (0 < len(txn) <= MAX_ID_CHARS and len(order) <= MAX_ID_CHARS
                and len(member) <= MAX_ID_CHARS and 0 < len(retailer) <= MAX_ID_CHARS
                and len(category) <= 100):
            return None
        status = statuses.get(row[i_status])
        if status is None or row[i_currency] != currency:
            return None
        raw_date = row[i_date]
        if len(raw_date) != 10 or raw_date[4] != "-" or raw_date[7] != "-":
            return None
        try:
            event_date = fromisoformat(raw_date)
        except ValueError:
            return None
        if event_date > today:
            return None
        sale = money(row[i_sale])
        commission = money(row[i_commission])
        if sale is None or commission is None or sale < 0 < commission:
            return None
        return ParsedLine(line, txn, order or None, member or None, retailer,
                          category.lower() or None, event_date, sale, commission, currency,
                          status)

    return check


def parse_csv(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    header: dict[str, int] = {}
    fast = None

    def on_header(row: list[str]) -> None:
        nonlocal fast
        header.update(_header(row))
        fast = _fast_path(header, ctx)

    index = header.get
    for item in f.csv_rows(chunks, ctx, on_header):
        if type(item) is LineError:
            yield item
            continue
        start, row = item
        result = fast(start, row) if fast is not None else None
        if result is None:  # anything unusual takes the careful path, which names the fault
            result = check_record(start, lambda name: row[index(name)] if name in header
                                  else None, ctx)
        if type(result) is list:
            yield from result
        else:
            yield result


def _from_mapping(line: int, record, ctx: ParseContext):
    if not isinstance(record, dict):
        return [LineError(line, None, "invalid_record", "each record must be a JSON object")]
    unknown = [k for k in record if k not in COLUMNS]
    if unknown:
        return [LineError(line, unknown[0], "unknown_field",
                          f"unknown field(s) {', '.join(map(repr, unknown[:5]))}")]
    return check_record(line, record.get, ctx)


def parse_json(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    records = f.json_records(f.load_json(chunks, MAX_JSON_BYTES), ("lines", "records", "data"))
    for number, record in enumerate(records, start=1):
        result = _from_mapping(number, record, ctx)
        if type(result) is list:
            yield from result
        else:
            yield result


def parse_ndjson(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    for number, record in f.ndjson_records(chunks, ctx):
        if isinstance(record, LineError):
            yield record
            continue
        result = _from_mapping(number, record, ctx)
        if type(result) is list:
            yield from result
        else:
            yield result


PARSERS = {"csv": parse_csv, "json": parse_json, "ndjson": parse_ndjson}
