"""Awin transactions, as Awin's transactions API returns them.

JSON: a bare array of transactions; NDJSON, one transaction per line. Fields we read (every
other field, `type` and `advertiserName` among them, is ignored):

- `id` -> transaction_id; `orderRef` -> order_id; `clickRefs.clickRef` -> member (or
  `clickRef2`..`clickRef6`: policy `networks.awin.member_field`; `clickRefs` may be missing
  or null: no member); `advertiserId` -> retailer (Awin's
  advertiser id, as a string); `transactionDate` (ISO date-time) -> event_date.
- `saleAmount` and `commissionAmount` are objects `{amount, currency}`. `amount` may be a
  JSON number (12.5) or a string; either way it is read from its literal text, never as a
  float. Both currencies must be the tenant's.
- `commissionStatus`: pending -> pending, approved -> confirmed, declined -> reversed,
  deleted -> reversed (case-insensitive); any other word is an error.
- `amended` (Awin amends a transaction in place, keeping its `id`) is informational: the
  amounts are the current absolute values, and the lifecycle computes the change.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from settlement.reports.formats import fields as f
from settlement.reports.formats import networks as n
from settlement.reports.formats.base import LineError, ParseContext, ParsedLine
from settlement.states import CommissionStatus

STATUSES = {"pending": CommissionStatus.PENDING, "approved": CommissionStatus.CONFIRMED,
            "declined": CommissionStatus.REVERSED, "deleted": CommissionStatus.REVERSED}


def _member(line: int, get, ctx: ParseContext, errors: list) -> str | None:
    refs = n.obj(get("clickRefs"), line, "clickRefs", errors, required=False)
    if refs is None:
        return None
    name = ctx.member_field or "clickRef"
    return f.identifier(refs.get(name), line, f"clickRefs.{name}", errors, required=False)


def _money(line: int, value, field: str, ctx: ParseContext,
           errors: list) -> tuple[int | None, str | None]:
    money = n.obj(value, line, field, errors)
    if money is None:
        return None, None
    return (f.amount(money.get("amount"), line, f"{field}.amount", ctx, errors),
            f.currency(money.get("currency"), line, f"{field}.currency", ctx, errors))


def check(line: int, get, ctx: ParseContext) -> ParsedLine | list[LineError]:
    errors: list[LineError] = []
    txn = f.identifier(get("id"), line, "id", errors)
    order = f.identifier(get("orderRef"), line, "orderRef", errors, required=False)
    member = _member(line, get, ctx, errors)
    retailer = f.identifier(get("advertiserId"), line, "advertiserId", errors)
    event_date = f.date(get("transactionDate"), line, "transactionDate", ctx, errors)
    sale, _ = _money(line, get("saleAmount"), "saleAmount", ctx, errors)
    commission, currency = _money(line, get("commissionAmount"), "commissionAmount", ctx, errors)
    status = f.status(get("commissionStatus"), line, "commissionStatus", STATUSES, errors)
    n.sign_rule(line, sale, commission, "commissionAmount.amount", errors)
    if errors:
        return errors
    return ParsedLine(line, txn, order, member, retailer, None, event_date, sale, commission,
                      currency, status)


def parse_json(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    return n.run(n.json_records(chunks, ctx, ()), check, ctx)


def parse_ndjson(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    return n.run(n.ndjson_records(chunks, ctx), check, ctx)


PARSERS = {"json": parse_json, "ndjson": parse_ndjson}
