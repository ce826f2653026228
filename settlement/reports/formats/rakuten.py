"""Rakuten Advertising Signature Orders report (CSV), as the publisher dashboard exports it,
and the same lines from the Events API (JSON, keys in EVENTS_KEYS below).

Columns (matched whatever their case or spacing; others are ignored): "Member ID (U1)",
"MID", "Advertiser Name", "Order ID", "Transaction Date", "Transaction Time", "SKU",
"Sales", "# of Items", "Total Commission", "Process Date", "Process Time", and optionally
"Currency", "Commission Status" and "Transaction ID". Required: Member ID (U1), MID, Order
ID, Transaction Date, SKU, Sales, Total Commission. Older (LinkShare) exports name some of
them "Merchant ID", "SKU Number" and "Commissions": the same columns.

- member: the u1 value, kept exactly (it is case-sensitive), at most 72 characters; empty
  or "<none>" (the link carried no u1) means no member. retailer: the MID. event_date:
  Transaction Date (ISO 2026-06-15, Japanese 2026/06/15 or US 06/15/2026, and in older
  exports 10/17/80: a two-digit year is the most recent such year not after the report;
  the time columns are ignored). Amounts are in "Currency" when the column is there (it
  must be the tenant's), else in the tenant's currency, with up to 4 decimals ("0.3995").

The standard report has no transaction id and no status, and it is a log of events: a
return, a cancellation or a discount is a new line, never an edit of an earlier one. So:

- Every line is its own transaction, of one of three kinds:
  - sale: Sales and Total Commission both zero or positive (and "# of Items" not negative);
    amounts as reported.
  - adjustment: Sales or Total Commission negative: a US return or cancellation (negative
    Sales, negative commission) or a Japanese discount (a negative SKU line). Amounts as
    reported, i.e. negative: they are added to the order's other lines.
  - deduction: a Japanese cancellation, reported as a positive deduction line: Sales and
    Total Commission zero or positive with a negative "# of Items". Its amounts are negated,
    so that an order's lines always sum to what the order is still worth (a full
    cancellation brings it to zero).
  A negative sale with a positive commission is refused (sign_mismatch).
- transaction_id is the "Transaction ID" when the export has that column and the line a
  value in it; otherwise it is derived from Order ID, SKU and the kind ("ORDER|SKU|sale");
  adjustment and deduction ids also carry the Process Date when there is one, so that two
  returns of the same SKU on different days stay two transactions. A key seen again in the
  same file gets "#2", "#3"... in file order. Re-uploading the same file (or a later report
  restating the same lines) therefore maps to the same ids. Ids longer than 128 characters
  become a sha256 digest of the same key.
- Status: Rakuten's report never reverses anything (a cancellation is a negative line), so
  no line is "reversed". A line is "confirmed" when the optional "Commission Status" column
  (Enhanced Order Locking) says locked; "unlocked", "not applicable", an empty value or no
  column leaves it without a status (`unstated`): the tenant's holding period
  (`networks.rakuten.confirm_after_days`) confirms it that many days after its event date,
  and without one it stays pending. The Process Date is when Rakuten processed the event,
  not a confirmation, so it does not confirm anything.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from settlement.reports.formats import fields as f
from settlement.reports.formats import networks as n
from settlement.reports.formats.base import UNSTATED, LineError, ParseContext, ParsedLine
from settlement.states import CommissionStatus

U1, MID, ORDER, SKU = "Member ID (U1)", "MID", "Order ID", "SKU"
TXN_DATE, SALES, ITEMS, COMMISSION = "Transaction Date", "Sales", "# of Items", "Total Commission"
PROCESS_DATE, CURRENCY, LOCK = "Process Date", "Currency", "Commission Status"
TXN_ID = "Transaction ID"
COLUMNS = (U1, MID, "Advertiser Name", ORDER, TXN_DATE, "Transaction Time", SKU, SALES, ITEMS,
           COMMISSION, PROCESS_DATE, "Process Time", CURRENCY, LOCK, TXN_ID)
REQUIRED = (U1, MID, ORDER, TXN_DATE, SKU, SALES, COMMISSION)
# The same columns under the older LinkShare names, which exports still carry.
HEADER = n.Header.of(COLUMNS, REQUIRED, aliases={"u1": U1, "Member ID": U1,
                                                  "Advertiser ID": MID, "Merchant ID": MID,
                                                  "SKU Number": SKU, "Commissions": COMMISSION,
                                                  "Number of Items": ITEMS})
MAX_U1_CHARS = 72
NO_MEMBER = "<none>"  # what the report says when the link carried no u1
# Enhanced Order Locking: a locked line can no longer change. Any other word leaves the line
# without a status, for the tenant's holding period to confirm (commissions/holds.py).
LOCK_STATUSES = {"locked": CommissionStatus.CONFIRMED, "unlocked": UNSTATED, "not applicable": UNSTATED,
                 "n/a": UNSTATED}


def _currency(line: int, get, field: str, ctx: ParseContext, errors: list) -> str | None:
    value = get(CURRENCY)
    if value is None or (isinstance(value, str) and not value.strip()):
        return ctx.currency
    return f.currency(value, line, field, ctx, errors)


def _status(line: int, get, errors: list) -> str | None:
    value = get(LOCK)
    if value is None or (isinstance(value, str) and not value.strip()):
        return UNSTATED
    return f.status(value, line, LOCK, LOCK_STATUSES, errors)


def kind_of(sale: int, commission: int, items: int | None) -> str:
    if sale < 0 or commission < 0:
        return "adjustment"
    if items is not None and items < 0:
        return "deduction"
    return "sale"


def _transaction_id(order: str, sku: str | None, kind: str, process_date,
                    seen: dict[str, int]) -> str:
    parts = [order, sku or "", kind]
    if kind != "sale" and process_date is not None:
        parts.append(process_date.isoformat())
    key = n.derived_id(*parts)
    count = seen.get(key, 0) + 1
    seen[key] = count
    return key if count == 1 else n.derived_id(*parts, f"#{count}")


def _member(line: int, get, field: str, errors: list) -> str | None:
    member = f.text(get(U1), line, field, errors, required=False, max_chars=MAX_U1_CHARS)
    return None if member == NO_MEMBER else member


def check(line: int, get, ctx: ParseContext, seen: dict[str, int],
          names: dict[str, str] | None = None) -> ParsedLine | list[LineError]:
    """One line; `get(column)` reads a column by its report name, and errors name the field
    as the sender wrote it (`names`: the Events API's keys; None: the report's columns)."""
    errors: list[LineError] = []
    name = names.get if names else (lambda column: column)
    member = _member(line, get, name(U1), errors)
    network_txn = f.identifier(get(TXN_ID), line, name(TXN_ID), errors, required=False)
    retailer = f.identifier(get(MID), line, name(MID), errors)
    order = f.identifier(get(ORDER), line, name(ORDER), errors)
    sku = f.identifier(get(SKU), line, name(SKU), errors, required=False)
    event_date = n.report_date(get(TXN_DATE), line, name(TXN_DATE), ctx, errors)
    process_date = n.report_date(get(PROCESS_DATE), line, name(PROCESS_DATE), ctx, errors,
                                 required=False)
    sale = f.amount(get(SALES), line, name(SALES), ctx, errors)
    items = n.integer(get(ITEMS), line, name(ITEMS), errors, required=False)
    commission = f.amount(get(COMMISSION), line, name(COMMISSION), ctx, errors)
    currency = _currency(line, get, name(CURRENCY), ctx, errors)
    status = _status(line, get, errors)
    n.sign_rule(line, sale, commission, name(COMMISSION), errors)
    if errors:
        return errors
    kind = kind_of(sale, commission, items)
    if kind == "deduction":
        sale, commission = -sale, -commission
    txn = network_txn or _transaction_id(order, sku, kind, process_date, seen)
    return ParsedLine(line, txn, order, member, retailer, None, event_date, sale, commission,
                      currency, status)


def parse_csv(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    seen: dict[str, int] = {}  # transaction ids given so far in this file

    def check_line(line: int, get, ctx: ParseContext):
        return check(line, get, ctx, seen)

    return n.run(n.csv_records(chunks, ctx, HEADER), check_line, ctx)


# The Rakuten Advertising Events API (`/events/1.0/transactions`): a JSON array of the same
# lines under these keys, dates as JavaScript writes them ("Thu Jun 04 2026 10:12:45
# GMT+0900 (...)"), no status either.
EVENTS_KEYS = {U1: "u1", MID: "advertiser_id", ORDER: "order_id", TXN_DATE: "transaction_date",
               SKU: "sku_number", SALES: "sale_amount", ITEMS: "quantity",
               COMMISSION: "commissions", PROCESS_DATE: "process_date", CURRENCY: "currency",
               TXN_ID: "etransaction_id"}


def parse_json(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    seen: dict[str, int] = {}

    def check_event(line: int, get, ctx: ParseContext):
        return check(line, lambda column: get(EVENTS_KEYS.get(column, "")), ctx, seen,
                     EVENTS_KEYS)

    return n.run(n.json_records(chunks, ctx, ()), check_event, ctx)


PARSERS = {"csv": parse_csv, "json": parse_json}
