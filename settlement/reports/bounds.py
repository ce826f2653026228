"""What a parsed line may hold, whatever its format and parser: identifiers that cannot
hide behind invisible or look-alike characters, amounts whose sums stay far from 64 bits,
event dates in a plausible window, and a sale and commission of the same sign.

Every parser's output (the Python parsers and the generic fast path) passes `checked()`
before it is staged; a clean generic CSV staged by COPY is held to the same bounds by
copy_csv's expression and checks, the report's total included. A line
out of bounds is a LineError naming line and field; a report whose total is out of bounds is
refused whole, before any of it is applied.
"""
from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Iterable, Iterator, NamedTuple

from settlement.reports.formats.base import (
    MAX_ID_CHARS,
    LineError,
    ParsedLine,
    ReportFormatError,
)

# Event dates: nothing in affiliate marketing happened before 2000, and a year-1 date is
# a broken export, not a sale (the later bound is the report's as-of date, see fields.date).
EARLIEST_EVENT_DATE = dt.date(2000, 1, 1)
# Staged amounts are network units (ten-thousandths of the major unit). One line carries at
# most a billion major units, a report at most a trillion in absolute value: a report of
# a million such lines still sums far below 2**63, on every column and in the ledger.
MAX_LINE_AMOUNT = 10 ** 13
MAX_REPORT_AMOUNT = 10 ** 16
_MAJOR = 10 ** 4  # network units per major unit (money.NETWORK_DIGITS)

# Explicit bidi controls: Cf like the rest, named so the message says what they do.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Cyrillic and Greek letters that render like Latin ones: an id made only of them, or
# mixing them with Latin letters, could pass for another id.
_LATIN_LOOKALIKES = set("АВЕЅІЈКМНОРСТХУаеіјорсхуѕԁһӏԛԝΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοτυνκιρ")
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


class FieldNames(NamedTuple):
    """How a format names the fields checked here (for the errors)."""
    transaction_id: str
    order_id: str
    member: str
    sale: str
    commission: str
    event_date: str


FIELD_NAMES = {
    "generic": FieldNames("transaction_id", "order_id", "member", "sale_amount",
                          "commission_amount", "event_date"),
    "cj": FieldNames("commissionId", "orderId", "shopperId", "saleAmountUsd",
                     "pubCommissionAmountUsd", "eventDate"),
    "impact": FieldNames("Id", "Oid", "SubId1", "Amount", "Payout", "EventDate"),
    "awin": FieldNames("id", "orderRef", "clickRefs.clickRef", "saleAmount.amount",
                       "commissionAmount.amount", "transactionDate"),
    "rakuten": FieldNames("Order ID", "Order ID", "Member ID (U1)", "Sales",
                          "Total Commission", "Transaction Date"),
}


class IdentifierRefused(ValueError):
    pass


def normalise_identifier(value: str) -> str:
    """The identifier in NFKC form (fullwidth letters, composed accents), or
    IdentifierRefused saying why it cannot be trusted to name one thing."""
    if value.isascii() and value.isprintable():
        return value  # the common case: NFKC leaves printable ASCII as it is
    for char in value:
        if char in _BIDI:
            raise IdentifierRefused(f"contains the bidirectional control U+{ord(char):04X}, "
                                    "which reorders how the id is displayed")
        category = unicodedata.category(char)
        if category in ("Cc", "Cf"):
            kind = "control" if category == "Cc" else "invisible format"
            raise IdentifierRefused(f"contains the {kind} character U+{ord(char):04X}")
    value = unicodedata.normalize("NFKC", value)
    for char in value:
        if char != "-" and unicodedata.category(char) == "Pd":
            raise IdentifierRefused(f"contains the dash U+{ord(char):04X}, which looks like "
                                    "a hyphen-minus")
    scripts = {name.split(" ", 1)[0] for name in map(_name, value)} & set(_SCRIPTS)
    if len(scripts) > 1:
        raise IdentifierRefused(f"mixes {' and '.join(sorted(scripts)).lower()} letters, "
                                "which can look alike")
    letters = [c for c in value if c.isalpha()]
    if scripts - {"LATIN"} and letters and all(c in _LATIN_LOOKALIKES for c in letters):
        raise IdentifierRefused("is made of letters that look like Latin ones")
    if len(value) > MAX_ID_CHARS:
        raise IdentifierRefused(f"has {len(value)} characters once normalised (NFKC); "
                                f"at most {MAX_ID_CHARS}")
    return value


def _name(char: str) -> str:
    return unicodedata.name(char, "")


def _identifier(line: int, value: str | None, field: str, errors: list) -> str | None:
    if value is None:
        return None
    try:
        return normalise_identifier(value)
    except IdentifierRefused as exc:
        errors.append(LineError(line, field, "invalid_identifier", f"{field} {exc}"))
        return None


def _line_errors(item: ParsedLine, names: FieldNames) -> tuple[ParsedLine, list[LineError]]:
    errors: list[LineError] = []
    line = item.line
    txn = _identifier(line, item.transaction_id, names.transaction_id, errors)
    order = _identifier(line, item.order_id, names.order_id, errors)
    member = _identifier(line, item.member, names.member, errors)
    original = _identifier(line, item.original_transaction_id, names.transaction_id, errors)
    for value, field in ((item.sale_amount, names.sale), (item.commission_amount,
                                                          names.commission)):
        if abs(value) > MAX_LINE_AMOUNT:
            errors.append(LineError(line, field, "amount_too_large",
                                    f"{field} is beyond {MAX_LINE_AMOUNT // _MAJOR:,} "
                                    "in major units, the most one line may carry"))
    if (item.sale_amount > 0 > item.commission_amount
            or item.sale_amount < 0 < item.commission_amount):
        errors.append(LineError(line, names.commission, "sign_mismatch",
                                "a sale and its commission must have the same sign "
                                "(a refund is negative on both)"))
    if item.event_date < EARLIEST_EVENT_DATE:
        errors.append(LineError(line, names.event_date, "date_out_of_range",
                                f"{names.event_date} {item.event_date.isoformat()} is before "
                                f"{EARLIEST_EVENT_DATE.isoformat()}"))
    if errors:
        return item, errors
    return item._replace(transaction_id=txn, order_id=order, member=member,
                         original_transaction_id=original), errors


def checked(items: Iterable[ParsedLine | LineError], fmt: str
            ) -> Iterator[ParsedLine | LineError]:
    """The parser's output with every line held to the bounds; raises ReportFormatError
    (naming the line where it happens) when the report's total goes out of bounds."""
    names = FIELD_NAMES.get(fmt, FIELD_NAMES["generic"])
    sale_total = commission_total = 0
    for item in items:
        if type(item) is LineError:
            yield item
            continue
        item, errors = _line_errors(item, names)
        if errors:
            yield from errors
            continue
        sale_total += abs(item.sale_amount)
        commission_total += abs(item.commission_amount)
        for total, field in ((sale_total, names.sale), (commission_total, names.commission)):
            if total > MAX_REPORT_AMOUNT:
                raise ReportFormatError([LineError(
                    item.line, field, "report_total_too_large",
                    f"the {field} of lines 1 to {item.line} sum beyond "
                    f"{MAX_REPORT_AMOUNT // _MAJOR:,} in major units, the most one report "
                    "may carry; split the report")])
        yield item
