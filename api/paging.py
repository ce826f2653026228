"""Cursors of the API's pages: the last row of a page, base64 in the answer's
`next_cursor`, given back as `cursor` for the next page. A row with a public number (or
an id the caller may see) is named by it; members and retailers, which have none, by
their external id or slug (which the caller sees anyway, where an internal id would tell
how many all tenants have)."""
from __future__ import annotations

import base64
from typing import Callable

from api.errors import Problem

MAX_NAME_CHARS = 128


def bad_cursor() -> Problem:
    return Problem(400, "Bad Request", "cursor is not one this API gave",
                   [{"line": None, "field": "cursor", "code": "invalid_cursor",
                     "message": "use the next_cursor of the previous page"}])


def encode_cursor(last: int | str | None) -> str | None:
    """The cursor after `last` (a number or a name); None: there is no next page."""
    if last is None:
        return None
    return base64.urlsafe_b64encode(str(last).encode()).decode().rstrip("=")


def decode_number_cursor(raw: str | None, *, lowest: int = 1) -> int | None:
    """The number a cursor carries, from `lowest` up to 2^63 - 1; None without a cursor."""
    if not raw:
        return None
    try:
        value = int(base64.urlsafe_b64decode(raw.encode() + b"==").decode())
    except (ValueError, UnicodeDecodeError):
        raise bad_cursor() from None
    if not lowest <= value < 2 ** 63:
        raise bad_cursor()
    return value


def decode_name_cursor(raw: str | None, lookup: Callable[[str], int | None]) -> int | None:
    """The internal id `lookup` finds for the name a cursor carries; None without a
    cursor."""
    if not raw:
        return None
    try:
        name = base64.urlsafe_b64decode(raw.encode() + b"==").decode()
    except (ValueError, UnicodeDecodeError):
        raise bad_cursor() from None
    # (PostgreSQL text holds no NUL.)
    found = lookup(name) if name and len(name) <= MAX_NAME_CHARS and "\x00" not in name \
        else None
    if found is None:
        raise bad_cursor()
    return found


def next_name_cursor(page, name_of: Callable[[object], str]) -> str | None:
    """The cursor after a page of named rows; None after the last page."""
    return None if page.next_after is None else encode_cursor(name_of(page.rows[-1]))
