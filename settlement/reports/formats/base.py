"""What every report format produces: normalised lines, or errors naming line and field.

A format module exposes `parse(chunks, ctx) -> Iterator[ParsedLine | LineError]`, where
`chunks` is an iterable of `bytes` (the request body, streamed) and `ctx` a `ParseContext`.
It never reads the whole body into memory when the format can be streamed (CSV, NDJSON),
never uses float on an amount (JSON numbers are read as their literal text), and yields one
`LineError` per bad field, so an integration engineer sees every problem of a line at once.
A problem with the file as a whole (not JSON, a missing column) raises `ReportFormatError`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple, Protocol

from settlement.states import CommissionStatus

STATUSES = tuple(CommissionStatus)  # a line's status, as its commission will carry it
# The status of a line the network sent without one: it becomes pending or confirmed by the
# tenant's holding period when applied (commissions/holds.py), never stored as such.
UNSTATED = "unstated"
MAX_FIELD_CHARS = 1024  # any longer field is refused (fields of megabytes are an attack)
MAX_ID_CHARS = 128


class ParsedLine(NamedTuple):
    line: int  # 1-based: the physical line in a CSV/NDJSON file, the record number in JSON
    transaction_id: str
    order_id: str | None
    member: str | None  # the member's external id (tracking id); None when absent
    retailer: str  # generic: retailer slug; networks: the network's advertiser id
    category: str | None
    event_date: dt.date
    sale_amount: int  # network units: ten-thousandths of the major unit (money.NETWORK_DIGITS)
    commission_amount: int  # network units, like sale_amount
    currency: str
    status: str  # one of STATUSES
    original_transaction_id: str | None = None  # correction records (CJ) point at their original


class LineError(NamedTuple):
    line: int | None  # None: the file as a whole
    field: str | None
    code: str  # machine-readable, snake_case: invalid_amount, unknown_status, missing_field...
    message: str  # for a person: says what was found and what was expected

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "code": self.code, "message": self.message}


class ReportFormatError(Exception):
    """The file cannot be read at all; nothing of it is applied."""

    def __init__(self, errors: list[LineError]):
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class ParseContext:
    currency: str  # the tenant's currency code; lines in another currency are refused
    digits: int  # the currency's minor digits
    today: dt.date  # event dates after this are refused as in the future
    max_line_bytes: int = 64 * 1024
    # The network's field that carries the member (policy `networks.X.member_field`);
    # None: the network's default (Impact SubId1, Awin clickRef).
    member_field: str | None = None
    # The tenant's time zone: a date-time with an offset is converted to it before its date
    # is taken (None: the date as written).
    zone: dt.tzinfo | None = None


class Parser(Protocol):
    def __call__(self, chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
        ...
