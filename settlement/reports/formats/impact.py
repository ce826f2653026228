"""Impact Actions, as Impact's Actions API returns them or its CSV export writes them.

JSON: a bare array of actions or the API's page `{"Actions": [...]}`; NDJSON, one action per
line; CSV with the same column names (matched whatever their case or spacing; columns we do
not use are ignored). Fields we read:

- `Id` -> transaction_id; `Oid` -> order_id; `SubId1` -> member (or `SubId2`, `SubId3`,
  `SharedId`: policy `networks.impact.member_field`); `CampaignId` -> retailer
  (Impact's campaign id, as a string); `EventDate` (ISO date-time) -> event_date.
- `Amount` (sale) and `Payout` (commission): the action's current absolute values, in
  `Currency`, which must be the tenant's. Impact also sends `DeltaAmount`/`DeltaPayout` on
  updates; they are ignored: the lifecycle computes deltas from the absolute values.
- `State`: PENDING -> pending, APPROVED -> confirmed, REVERSED -> reversed (case-insensitive);
  any other word is an error. An action changes state in place, keeping its `Id`.
- `Category` and `ActionTrackerName` are ignored (category is None).
"""
from __future__ import annotations

from typing import Iterable, Iterator

from settlement.reports.formats import fields as f
from settlement.reports.formats import networks as n
from settlement.reports.formats.base import LineError, ParseContext, ParsedLine
from settlement.states import CommissionStatus

ENVELOPES = (("Actions",),)
STATES = {"pending": CommissionStatus.PENDING, "approved": CommissionStatus.CONFIRMED,
          "reversed": CommissionStatus.REVERSED}
MEMBER_FIELDS = ("SubId1", "SubId2", "SubId3", "SharedId")
COLUMNS = ("Id", "Oid", *MEMBER_FIELDS, "CampaignId", "EventDate", "Amount", "Payout",
           "Currency", "State")
REQUIRED = ("Id", "CampaignId", "EventDate", "Amount", "Payout", "Currency", "State")
HEADER = n.Header.of(COLUMNS, REQUIRED)


def check(line: int, get, ctx: ParseContext) -> ParsedLine | list[LineError]:
    errors: list[LineError] = []
    txn = f.identifier(get("Id"), line, "Id", errors)
    order = f.identifier(get("Oid"), line, "Oid", errors, required=False)
    member_field = ctx.member_field or MEMBER_FIELDS[0]
    member = f.identifier(get(member_field), line, member_field, errors, required=False)
    retailer = f.identifier(get("CampaignId"), line, "CampaignId", errors)
    event_date = f.date(get("EventDate"), line, "EventDate", ctx, errors)
    sale = f.amount(get("Amount"), line, "Amount", ctx, errors)
    commission = f.amount(get("Payout"), line, "Payout", ctx, errors)
    currency = f.currency(get("Currency"), line, "Currency", ctx, errors)
    status = f.status(get("State"), line, "State", STATES, errors)
    n.sign_rule(line, sale, commission, "Payout", errors)
    if errors:
        return errors
    return ParsedLine(line, txn, order, member, retailer, None, event_date, sale, commission,
                      currency, status)


def parse_json(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    return n.run(n.json_records(chunks, ctx, ENVELOPES), check, ctx)


def parse_ndjson(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    return n.run(n.ndjson_records(chunks, ctx), check, ctx)


def parse_csv(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    return n.run(n.csv_records(chunks, ctx, HEADER), check, ctx)


PARSERS = {"csv": parse_csv, "json": parse_json, "ndjson": parse_ndjson}
