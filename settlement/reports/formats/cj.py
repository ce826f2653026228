"""CJ commission detail records, as CJ's commission detail API returns them.

JSON: a bare array of records, the API's envelope
`{"data": {"publisherCommissions": {"records": [...]}}}`, or `{"records": [...]}`; or NDJSON,
one record per line. Fields we read (every other field is ignored):

- `commissionId` -> transaction_id; `orderId` -> order_id; `shopperId` -> member;
  `advertiserId` -> retailer (CJ's advertiser id, as a string); `eventDate` (ISO date-time)
  -> event_date; `category` (optional, not a CJ field) -> category.
- `saleAmountUsd`, `pubCommissionAmountUsd`: decimal strings in USD, may be negative. CJ
  reports in USD, so a tenant whose currency is not USD gets a `wrong_currency` error on
  every line (field `pubCommissionAmountUsd`) rather than a silent conversion.
- Status, from `actionStatus` (new/extended/locked/closed/corrected) and `validationStatus`
  (PENDING/ACCEPTED/DECLINED/AUTOMATED), case-insensitive; any other word is an error:
  - DECLINED, whatever the action status -> reversed;
  - locked or closed, with ACCEPTED or AUTOMATED -> confirmed;
  - anything else (new/extended, corrected -- a record a later correction record amends,
    its own amounts unchanged -- or validation still PENDING) -> pending.
- Corrections: CJ never edits a commission; it sends a new record with `original=false`,
  its own `commissionId`, `originalActionId` pointing at the record it corrects and a
  `correctionReason`; its amounts are deltas (usually negative). Such a line carries
  `original_transaction_id = originalActionId` (required: a correction without it is an
  error). `original` itself is required: without it a delta could not be told from an
  absolute amount. On an original record `originalActionId` is ignored. A correction
  whose original this account never reported is kept aside (commissions/corrections.py).
- Amounts: CJ states them with up to 3 decimals ("7.781"), kept at that precision.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from settlement.reports.formats import fields as f
from settlement.reports.formats import networks as n
from settlement.reports.formats.base import LineError, ParseContext, ParsedLine
from settlement.states import CommissionStatus

ENVELOPES = (("data", "publisherCommissions", "records"), ("records",))
CURRENCY = "USD"
ACTION_STATUSES = {s: s for s in ("new", "extended", "locked", "closed", "corrected")}
VALIDATION_STATUSES = {s: s for s in ("pending", "accepted", "declined", "automated")}


def status_of(action: str, validation: str) -> CommissionStatus:
    if validation == "declined":
        return CommissionStatus.REVERSED
    if action in ("locked", "closed") and validation in ("accepted", "automated"):
        return CommissionStatus.CONFIRMED
    return CommissionStatus.PENDING


def _currency(line: int, ctx: ParseContext, errors: list) -> None:
    if ctx.currency != CURRENCY:
        errors.append(LineError(line, "pubCommissionAmountUsd", "wrong_currency",
                                f"CJ reports amounts in {CURRENCY}; this tenant's currency "
                                f"is {ctx.currency}"))


def _original(line: int, get, txn: str | None, errors: list) -> str | None:
    """The commissionId a correction record corrects; None for an original record."""
    original = n.boolean(get("original"), line, "original", errors)
    if original is not False:
        return None
    target = f.identifier(get("originalActionId"), line, "originalActionId", errors)
    if target is not None and target == txn:
        errors.append(LineError(line, "originalActionId", "invalid_reference",
                                "a correction record cannot correct itself"))
        return None
    return target


def check(line: int, get, ctx: ParseContext) -> ParsedLine | list[LineError]:
    errors: list[LineError] = []
    txn = f.identifier(get("commissionId"), line, "commissionId", errors)
    order = f.identifier(get("orderId"), line, "orderId", errors, required=False)
    member = f.identifier(get("shopperId"), line, "shopperId", errors, required=False)
    retailer = f.identifier(get("advertiserId"), line, "advertiserId", errors)
    category = f.text(get("category"), line, "category", errors, required=False, max_chars=100)
    event_date = f.date(get("eventDate"), line, "eventDate", ctx, errors)
    sale = f.amount(get("saleAmountUsd"), line, "saleAmountUsd", ctx, errors)
    commission = f.amount(get("pubCommissionAmountUsd"), line, "pubCommissionAmountUsd", ctx,
                          errors)
    _currency(line, ctx, errors)
    action = f.status(get("actionStatus"), line, "actionStatus", ACTION_STATUSES, errors)
    validation = f.status(get("validationStatus"), line, "validationStatus",
                          VALIDATION_STATUSES, errors)
    original_id = _original(line, get, txn, errors)
    f.text(get("correctionReason"), line, "correctionReason", errors, required=False)
    n.sign_rule(line, sale, commission, "pubCommissionAmountUsd", errors)
    if errors:
        return errors
    return ParsedLine(line, txn, order, member, retailer,
                      category.lower() if category else None, event_date, sale, commission,
                      CURRENCY, status_of(action, validation), original_id)


def parse_json(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    return n.run(n.json_records(chunks, ctx, ENVELOPES), check, ctx)


def parse_ndjson(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    return n.run(n.ndjson_records(chunks, ctx), check, ctx)


PARSERS = {"json": parse_json, "ndjson": parse_ndjson}
