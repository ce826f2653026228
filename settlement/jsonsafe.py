"""JSON from strangers: bounded nesting, no duplicate keys, numbers kept as their text.

Python's parser recurses once per level of nesting, so a body of a few kilobytes of
brackets ends in RecursionError; the depth is measured first, without recursion, from the
text itself. A key given twice is refused instead of silently keeping the last value (two
readers of the same body could otherwise disagree on what it says).
"""
from __future__ import annotations

import json
import re
from itertools import accumulate

# Our documents are a few levels deep (a report's envelope, a record, an amount object);
# 64 leaves room for any honest one.
MAX_DEPTH = 64
# A string, or an unterminated one to the end: every quote starts a match, so the search
# never fails and retries from the next quote (which made a body of `"\"\"...` quadratic).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JsonRefused(ValueError):
    """A body we will not parse; the message says why, for the sender."""

    def __init__(self, message: str, code: str = "invalid_json"):
        super().__init__(message)
        self.code = code


class JsonNumber(str):
    """A JSON number, kept as its literal text (never a float), and known to have been a
    number rather than a string."""


def depth(doc: str) -> int:
    """How deeply arrays and objects nest in `doc` (0 for a scalar), without recursing."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", doc))
    if not brackets:
        return 0
    return max(accumulate(1 if c in "[{" else -1 for c in brackets))


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise JsonRefused(f"the key {twice[:64]!r} appears twice in one object",
                          "duplicate_key")
    return out


def _no_constants(name: str):
    raise JsonRefused(f"{name} is not a number")


def loads(doc: str | bytes, *, max_depth: int = MAX_DEPTH, exact_numbers: bool = False):
    """Parse `doc`: JsonRefused (a ValueError) when it nests deeper than `max_depth`, repeats
    a key in an object, or is not JSON. With `exact_numbers`, numbers come as JsonNumber."""
    if isinstance(doc, (bytes, bytearray)):
        try:
            doc = doc.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRefused(f"byte {exc.start + 1} of the body is not UTF-8") from None
    if depth(doc) > max_depth:
        raise JsonRefused(f"arrays and objects nest deeper than {max_depth} levels",
                          "too_deep")
    numbers = {"parse_float": JsonNumber, "parse_int": JsonNumber} if exact_numbers else {}
    try:
        return json.loads(doc, object_pairs_hook=_unique_keys, parse_constant=_no_constants,
                          **numbers)
    except JsonRefused:
        raise
    except RecursionError:  # the depth check makes this unreachable; never a crash anyway
        raise JsonRefused(f"arrays and objects nest deeper than {max_depth} levels",
                          "too_deep") from None
    except ValueError as exc:
        raise JsonRefused(f"not JSON: {exc}") from None
