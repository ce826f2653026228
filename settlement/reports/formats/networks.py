"""What the network formats (CJ, Impact, Awin, Rakuten) share.

A network module writes one `check(line, get, ctx) -> ParsedLine | list[LineError]`, where
`get(name)` returns the raw value of one of the network's own fields (None when absent), and
feeds it records from the readers here:

- `json_records(chunks, ctx, paths)`: a whole JSON document, a bare array or an array at one
  of `paths` (the envelope the network's API wraps its records in); record numbers are lines.
- `ndjson_records(chunks, ctx)`: one JSON object per physical line, streamed.
- `csv_records(chunks, ctx, header)`: a CSV export, streamed, matched to the network's column
  names whatever their case or spacing; columns we do not use are ignored (network exports
  carry dozens of them).

Each reader yields `(line, get)` for a record, or `(line, LineError)` when the record cannot
be read at all; `run` ties a reader to a check. Errors always name the network's own field
(`pubCommissionAmountUsd`, `saleAmount.amount`, `Total Commission`), since that is what the
integration engineer sees in the network's documentation.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from settlement.reports.formats import fields as f
from settlement.reports.formats.base import (
    MAX_ID_CHARS,
    LineError,
    ParseContext,
    ParsedLine,
    ReportFormatError,
)

MAX_JSON_BYTES = 64 * 1024 * 1024

Getter = Callable[[str], object]
Check = Callable[[int, Getter, ParseContext], "ParsedLine | list[LineError]"]


# --- readers -------------------------------------------------------------------------------

def records_at(doc, paths: tuple[tuple[str, ...], ...]) -> list:
    """The records of a JSON document: a bare array, or the array at one of `paths`."""
    if isinstance(doc, list):
        return doc
    for path in paths:
        node = doc
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, list):
            return node
    where = " or ".join(".".join(path) for path in paths)
    message = "expected an array of records"
    if where:
        message += f" or an object holding one at {where}"
    raise ReportFormatError([LineError(None, None, "invalid_json", message)])


def _record(line: int, record) -> tuple[int, Getter | LineError]:
    if not isinstance(record, dict):
        return line, LineError(line, None, "invalid_record", "each record must be a JSON object")
    return line, record.get


def json_records(chunks: Iterable[bytes], ctx: ParseContext,
                 paths: tuple[tuple[str, ...], ...]) -> Iterator[tuple[int, Getter | LineError]]:
    records = records_at(f.load_json(chunks, MAX_JSON_BYTES), paths)
    for number, record in enumerate(records, start=1):
        yield _record(number, record)


def ndjson_records(chunks: Iterable[bytes],
                   ctx: ParseContext) -> Iterator[tuple[int, Getter | LineError]]:
    for number, record in f.ndjson_records(chunks, ctx):
        if isinstance(record, LineError):
            yield number, record
        else:
            yield _record(number, record)


def header_key(name: str) -> str:
    """How a column name is compared: case and runs of whitespace do not matter."""
    return " ".join(name.replace("\ufeff", "").split()).lower()


@dataclass(frozen=True)
class Header:
    """A network's CSV columns: `names` maps every accepted spelling (as `header_key` gives
    it) to the column's canonical name; `required` lists canonical names."""
    names: dict[str, str]
    required: tuple[str, ...]

    @classmethod
    def of(cls, columns: Iterable[str], required: Iterable[str],
           aliases: dict[str, str] | None = None) -> "Header":
        names = {header_key(c): c for c in columns}
        for alias, canonical in (aliases or {}).items():
            names[header_key(alias)] = canonical
        return cls(names, tuple(required))

    def index(self, row: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        dupes: list[str] = []
        for i, raw in enumerate(row):
            canonical = self.names.get(header_key(raw))
            if canonical is None:
                continue  # a column we do not use
            if canonical in found:
                dupes.append(canonical)
            found[canonical] = i
        problems = []
        if dupes:
            problems.append(LineError(1, dupes[0], "duplicate_column",
                                      f"column(s) {', '.join(dupes)} appear more than once"))
        missing = [c for c in self.required if c not in found]
        if missing:
            problems.append(LineError(1, missing[0], "missing_column",
                                      f"missing column(s) {', '.join(missing)}"))
        if problems:
            raise ReportFormatError(problems)
        return found


def _getter(row: list[str], index: dict[str, int]) -> Getter:
    def get(name: str):
        i = index.get(name)
        return None if i is None else row[i]
    return get


def csv_records(chunks: Iterable[bytes], ctx: ParseContext,
                header: Header) -> Iterator[tuple[int, Getter | LineError]]:
    """Data rows of a CSV export with their first physical line (see fields.csv_rows)."""
    state: dict = {}

    def on_header(row: list[str]) -> None:
        state["index"] = header.index(row)

    for item in f.csv_rows(chunks, ctx, on_header):
        if type(item) is LineError:
            yield item.line, item
        else:
            yield item[0], _getter(item[1], state["index"])


def run(records: Iterator[tuple[int, Getter | LineError]], check: Check,
        ctx: ParseContext) -> Iterator[ParsedLine | LineError]:
    for line, item in records:
        if isinstance(item, LineError):
            yield item
            continue
        result = check(line, item, ctx)
        if type(result) is list:
            yield from result
        else:
            yield result


# --- field checks the networks need beyond fields.py ---------------------------------------

def boolean(value, line: int, field: str, errors: list, *, required: bool = True) -> bool | None:
    """A JSON boolean (or the text true/false, as CSV exports write it)."""
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append(LineError(line, field, "missing_field", f"{field} is empty"))
        return None
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    errors.append(LineError(line, field, "invalid_boolean",
                            f"{field} must be true or false, not {str(value)[:40]!r}"))
    return None


def obj(value, line: int, field: str, errors: list, *, required: bool = True) -> dict | None:
    """A nested JSON object such as Awin's `saleAmount` or `clickRefs`."""
    if isinstance(value, dict):
        return value
    if value is None:
        if required:
            errors.append(LineError(line, field, "missing_field", f"{field} is missing"))
        return None
    errors.append(LineError(line, field, "invalid_type", f"{field} must be a JSON object"))
    return None


_INTEGER = re.compile(r"-?[0-9]{1,9}\Z", re.ASCII)


def integer(value, line: int, field: str, errors: list, *, required: bool = True) -> int | None:
    raw = f.text(value, line, field, errors, required=required, max_chars=40)
    if raw is None:
        return None
    if not _INTEGER.match(raw):
        errors.append(LineError(line, field, "invalid_integer",
                                f"{field} {raw[:40]!r} is not a whole number like 3"))
        return None
    return int(raw)


_YMD_SLASH = re.compile(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})\Z", re.ASCII)
_MDY_SLASH = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}|[0-9]{2})\Z", re.ASCII)
# A date-time as JavaScript's Date.toString() writes it (Rakuten's Events API):
# "Thu Jun 04 2026 10:12:45 GMT+0900 (Japan Standard Time)".
_JS_DATE = re.compile(r"[A-Z][a-z]{2} ([A-Z][a-z]{2}) ([0-9]{2}) ([0-9]{4}) "
                      r"([0-9]{2}:[0-9]{2}:[0-9]{2}) GMT([+-][0-9]{2})([0-9]{2})(?: \(.*\))?\Z",
                      re.ASCII)
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"), start=1)}


def _js_date_iso(raw: str) -> str | None:
    """The ISO date-time of a JavaScript date string, or None if `raw` is not one."""
    m = _JS_DATE.match(raw)
    if m is None or m.group(1) not in _MONTHS:
        return None
    month, day, year, clock, hours, minutes = m.groups()
    return f"{year}-{_MONTHS[month]:02d}-{day}T{clock}{hours}:{minutes}"


def report_date(value, line: int, field: str, ctx: ParseContext, errors: list, *,
                required: bool = True) -> dt.date | None:
    """A report date: ISO (2026-06-15, or a date-time), Japanese 2026/06/15, US 06/15/2026
    (a time after a space is ignored), or JavaScript's "Thu Jun 04 2026 10:12:45 GMT+0900"
    (converted to the tenant's time zone like any date-time with an offset). A two-digit year (older exports: 10/17/80)
    is the most recent such year not after the report's date (1980, never 2080). Slashed
    dates are never read day-first, so no date is ambiguous."""
    raw = f.text(value, line, field, errors, required=required, max_chars=80)
    if raw is None:
        return None
    iso = _js_date_iso(raw)
    if iso is not None:
        return f.date(iso, line, field, ctx, errors)
    head = raw.split(" ", 1)[0]
    m = _YMD_SLASH.match(head)
    parts = (m.group(1), m.group(2), m.group(3)) if m else None
    if parts is None:
        m = _MDY_SLASH.match(head)
        if m:
            year = m.group(3) if len(m.group(3)) == 4 else _past_year(m.group(3), ctx.today)
            parts = (year, m.group(1), m.group(2))
    if parts is None:
        return f.date(raw, line, field, ctx, errors)
    try:
        day = dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        errors.append(LineError(line, field, "invalid_date",
                                f"{field} {raw[:40]!r} is not a date like 2026-11-01"))
        return None
    if day > ctx.today:
        errors.append(LineError(line, field, "future_date",
                                f"{field} {day.isoformat()} is in the future"))
        return None
    return day


def _past_year(two_digits: str, today: dt.date) -> str:
    """The latest year ending in these two digits that is not after `today`'s year (a date
    later in that year is then refused as in the future, as it would be written in full)."""
    year = today.year - (today.year - int(two_digits)) % 100
    return str(year)


def sign_rule(line: int, sale: int | None, commission: int | None, field: str,
              errors: list) -> None:
    """fields.sign_rule, naming the network's commission field."""
    if sale is not None and commission is not None and sale < 0 < commission:
        errors.append(LineError(line, field, "sign_mismatch",
                                "a negative sale cannot carry a positive commission"))


def derived_id(*parts: str) -> str:
    """A transaction id made of `parts`, for networks that send none. "%" and "|" inside a part
    are escaped so that different parts never give the same id; an id longer than
    MAX_ID_CHARS becomes a digest of itself."""
    joined = "|".join(p.replace("%", "%25").replace("|", "%7C") for p in parts)
    if len(joined) <= MAX_ID_CHARS:
        return joined
    return "sha256:" + hashlib.sha256(joined.encode("utf-8")).hexdigest()
