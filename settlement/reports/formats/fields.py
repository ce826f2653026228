"""Field checks shared by every format, and the byte-stream readers they stand on.

Each check either returns the clean value or appends a `LineError` naming line and field,
so one pass reports every problem of a line.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
from typing import Callable, Iterable, Iterator

from settlement import jsonsafe
from settlement.money import CURRENCY_MINOR_DIGITS, AmountError, parse_network_amount
from settlement.reports.formats.base import (
    MAX_FIELD_CHARS,
    MAX_ID_CHARS,
    STATUSES,
    LineError,
    ParseContext,
    ReportFormatError,
)

BOM = b"\xef\xbb\xbf"


def text(value, line: int, field: str, errors: list, *, required: bool = True,
         max_chars: int = MAX_FIELD_CHARS) -> str | None:
    """A trimmed string field; None when empty and optional."""
    if value is None:
        value = ""
    elif not isinstance(value, str):
        if isinstance(value, (int,)) and not isinstance(value, bool):
            value = str(value)
        else:
            errors.append(LineError(line, field, "invalid_type", f"{field} must be a string"))
            return None
    value = value.strip()
    if not value:
        if required:
            errors.append(LineError(line, field, "missing_field", f"{field} is empty"))
        return None
    if len(value) > max_chars:
        errors.append(LineError(line, field, "too_long",
                                f"{field} has {len(value)} characters; at most {max_chars}"))
        return None
    if "\x00" in value:
        errors.append(LineError(line, field, "nul_byte", f"{field} contains a NUL byte"))
        return None
    return value


def identifier(value, line: int, field: str, errors: list, *, required: bool = True) -> str | None:
    return text(value, line, field, errors, required=required, max_chars=MAX_ID_CHARS)


def amount(value, line: int, field: str, ctx: ParseContext, errors: list, *,
           json_number_ok: bool = True) -> int | None:
    """A network amount in ten-thousandths of the major unit: networks send up to 4
    decimals whatever the currency's minor digits (money.NETWORK_DIGITS). A JSON number is
    read from its literal text where a network's API sends numbers; our own format asks
    for strings (`json_number_ok=False`), since a number there was likely a float that
    was rounded on its way to us."""
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.append(LineError(line, field, "missing_field", f"{field} is empty"))
        return None
    if isinstance(value, jsonsafe.JsonNumber) and not json_number_ok:
        errors.append(LineError(line, field, "json_number",
                                f"{field} must be a decimal string like \"12.34\", "
                                "not a JSON number"))
        return None
    if not isinstance(value, str):
        # JSON numbers arrive as their literal text (see load_json); anything else is wrong.
        errors.append(LineError(line, field, "invalid_amount",
                                f"{field} must be a decimal string like 12.34"))
        return None
    try:
        return parse_network_amount(value.strip())
    except AmountError as exc:
        errors.append(LineError(line, field, exc.code, f"{field}: {exc.message}"))
        return None


def currency(value, line: int, field: str, ctx: ParseContext, errors: list, *,
             upper_only: bool = False) -> str | None:
    """An ISO 4217 code, the tenant's. Networks' own spellings ("usd") are read as they
    come; our own format asks for the code as ISO writes it (`upper_only`)."""
    code = text(value, line, field, errors, max_chars=8)
    if code is None:
        return None
    if upper_only and code != code.upper():
        errors.append(LineError(line, field, "invalid_currency",
                                f"{field} {code[:8]!r} is written in upper case: "
                                f"{code[:8].upper()!r}"))
        return None
    code = code.upper()
    if code not in CURRENCY_MINOR_DIGITS:
        errors.append(LineError(line, field, "unknown_currency",
                                f"{field} {code[:8]!r} is not an ISO 4217 currency"))
        return None
    if code != ctx.currency:
        errors.append(LineError(line, field, "wrong_currency",
                                f"{field}: {code} is not this tenant's currency "
                                f"({ctx.currency})"))
        return None
    return code


def date(value, line: int, field: str, ctx: ParseContext, errors: list) -> dt.date | None:
    """An ISO date, or an ISO date-time: without an offset it is the tenant's local time and
    its date part is taken; with one it is first converted to the tenant's time zone
    (`ctx.zone`), so that rules, promotions and cut-offs see the tenant's calendar day."""
    raw = text(value, line, field, errors, max_chars=40)
    if raw is None:
        return None
    # ISO calendar dates only: Python also reads 20260601 and week dates like 2026-W23-1.
    if len(raw) < 10 or raw[4] != "-" or raw[7] != "-" or (len(raw) > 10 and raw[10] not in "T "):
        errors.append(LineError(line, field, "invalid_date",
                                f"{field} {raw[:40]!r} is not a date like 2026-11-01"))
        return None
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
        else:
            moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if moment.tzinfo is not None and ctx.zone is not None:
                moment = moment.astimezone(ctx.zone)
            day = moment.date()
    except ValueError:
        errors.append(LineError(line, field, "invalid_date",
                                f"{field} {raw[:40]!r} is not a date like 2026-11-01"))
        return None
    if day > ctx.today:
        errors.append(LineError(line, field, "future_date",
                                f"{field} {day.isoformat()} is in the future"))
        return None
    return day


def status(value, line: int, field: str, mapping: dict[str, str], errors: list) -> str | None:
    raw = text(value, line, field, errors, max_chars=40)
    if raw is None:
        return None
    mapped = mapping.get(raw.lower())
    if mapped is None:
        known = ", ".join(sorted(mapping))
        errors.append(LineError(line, field, "unknown_status",
                                f"{field} {raw[:40]!r} is not one of {known}"))
    return mapped


GENERIC_STATUSES = {s: s for s in STATUSES}


def sign_rule(line: int, sale: int | None, commission: int | None, errors: list) -> None:
    """A sale and its commission move together: a refund is negative on both sides."""
    if sale is not None and commission is not None and sale < 0 < commission:
        errors.append(LineError(line, "commission_amount", "sign_mismatch",
                                "a negative sale cannot carry a positive commission"))


def byte_lines(chunks: Iterable[bytes], max_line_bytes: int | None = None) -> Iterator[bytes]:
    """Split a chunked byte stream into lines, each keeping its b"\\n"; drops a leading BOM.

    A line longer than `max_line_bytes` is not held in memory: its first max+1 bytes are
    yielded (so the caller sees it is too long) and the rest is skipped up to its newline.
    """
    pending = b""
    skipping = False  # inside an overlong line, already reported
    head = b""  # the first bytes, held until a BOM can be told apart however they arrive
    for chunk in chunks:
        if not chunk:
            continue
        if head is not None:
            head += chunk
            if len(head) < len(BOM) and BOM.startswith(head):
                continue
            chunk = head[len(BOM):] if head.startswith(BOM) else head
            head = None
            if not chunk:
                continue
        buf = pending + chunk if pending else chunk
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            if skipping:
                skipping = False
            else:
                yield buf[start:end + 1]
            start = end + 1
        pending = buf[start:]
        if max_line_bytes is not None and len(pending) > max_line_bytes:
            if not skipping:
                yield pending[:max_line_bytes + 1]
                skipping = True
            pending = b""
    if head:
        pending = head
    if pending and not skipping:
        yield pending


def decoded_lines(chunks: Iterable[bytes], ctx: ParseContext,
                  bad: dict[int, LineError]) -> Iterator[str]:
    """UTF-8 text lines for csv.reader. A line that is not UTF-8, holds a NUL byte or is too
    long is recorded in `bad` by its line number and replaced by an empty line, which the
    CSV reader skips, so one bad line never hides the rest of the file."""
    number = 0
    for raw in byte_lines(chunks, ctx.max_line_bytes):
        number += 1
        if len(raw) > ctx.max_line_bytes:
            bad[number] = LineError(number, None, "line_too_long",
                                    f"line is {len(raw)} bytes; at most {ctx.max_line_bytes}")
            yield "\n"
            continue
        if b"\x00" in raw:
            bad[number] = LineError(number, None, "nul_byte", "line contains a NUL byte")
            yield "\n"
            continue
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad[number] = LineError(number, None, "invalid_utf8",
                                    f"byte {exc.start + 1} of the line is not UTF-8")
            yield "\n"


def csv_rows(chunks: Iterable[bytes], ctx: ParseContext,
             on_header: Callable[[list[str]], None]) -> Iterator[tuple[int, list[str]] | LineError]:
    """The CSV reading every CSV format shares: `on_header(row)` gets the header row (and may
    refuse the file); data rows come as (first physical line, fields), and every line that
    cannot be read (not UTF-8, NUL, too long, bad quoting, wrong field count) as a LineError,
    in file order, so one bad line never hides the rest."""
    bad: dict[int, LineError] = {}
    reader = csv.reader(decoded_lines(chunks, ctx, bad), strict=True)
    width = None
    last_line = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            last_line = reader.line_num
            yield LineError(last_line, None, "invalid_csv", f"not valid CSV: {exc}")
            continue
        start = last_line + 1
        last_line = reader.line_num
        if bad:
            for number in sorted(n for n in bad if n <= last_line):
                yield bad.pop(number)
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if width is None:
            on_header(row)
            width = len(row)
            continue
        if len(row) != width:
            yield LineError(start, None, "wrong_column_count",
                            f"line has {len(row)} fields; the header has {width}")
            continue
        yield start, row
    for number in sorted(bad):
        yield bad[number]
    if width is None:
        raise ReportFormatError([LineError(1, None, "missing_header",
                                           "the file is empty or has no header line")])


def load_json(chunks: Iterable[bytes], max_bytes: int):
    """A whole JSON document, numbers kept as their literal text (never float)."""
    parts, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:  # stop reading: a JSON document is parsed whole, in memory
            raise ReportFormatError([LineError(None, None, "too_large",
                                               f"a JSON report is at most {max_bytes} bytes; "
                                               "send CSV or NDJSON for larger ones")])
        parts.append(chunk)
    body = b"".join(parts)
    if body.startswith(BOM):
        body = body[len(BOM):]
    try:
        doc = codecs.decode(body, "utf-8")
    except UnicodeDecodeError as exc:
        raise ReportFormatError([LineError(None, None, "invalid_utf8",
                                           f"byte {exc.start + 1} of the body is not UTF-8")])
    return loads_exact(doc, None)


def loads_exact(doc: str, line: int | None):
    """Numbers as JsonNumber (their literal text); bounded nesting, no duplicate keys."""
    try:
        return jsonsafe.loads(doc, exact_numbers=True)
    except jsonsafe.JsonRefused as exc:
        raise ReportFormatError([LineError(line, None, exc.code, str(exc))])


def json_records(doc, keys: tuple[str, ...]) -> list:
    """The list of records in a JSON document: a bare array, or an array under one of `keys`
    (the envelope each network's API wraps its records in)."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for key in keys:
            value = doc.get(key)
            if isinstance(value, list):
                return value
            if isinstance(value, dict):
                for inner in keys:
                    if isinstance(value.get(inner), list):
                        return value[inner]
    raise ReportFormatError([LineError(None, None, "invalid_json",
                                       "expected an array of records"
                                       + (f" or an object holding one under {', '.join(keys)}"
                                          if keys else ""))])


def ndjson_records(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[tuple[int, object]]:
    """(line number, decoded object or LineError) for each non-blank NDJSON line."""
    number = 0
    for raw in byte_lines(chunks, ctx.max_line_bytes):
        number += 1
        if not raw.strip():
            continue
        if len(raw) > ctx.max_line_bytes:
            yield number, LineError(number, None, "line_too_long",
                                    f"line is {len(raw)} bytes; at most {ctx.max_line_bytes}")
            continue
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, LineError(number, None, "invalid_utf8",
                                    f"byte {exc.start + 1} of the line is not UTF-8")
            continue
        try:
            yield number, loads_exact(decoded, number)
        except ReportFormatError as exc:
            yield number, exc.errors[0]
