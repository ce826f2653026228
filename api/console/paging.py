"""Pages of the console's tables: keyset pages (`after` the last id shown), like the API."""
from __future__ import annotations

from flask import request

PAGE_SIZE = 50


def after_arg() -> int | None:
    """The `after` query argument when it is an id we could have given, else None (the
    first page)."""
    value = request.args.get("after", "")
    return int(value) if value.isdigit() and 0 < int(value) < 2 ** 63 else None
