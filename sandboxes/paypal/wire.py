"""The sandbox's HTTP wire: strict JSON in, JSON out with PayPal's error shape, and the ids
and timestamps PayPal's answers carry."""
from __future__ import annotations

import datetime as dt
import functools
import json
import random
import urllib.parse
from decimal import Decimal
from typing import Any

from werkzeug.wrappers import Response

from sandboxes.paypal.rules import INFORMATION_LINK, MAX_DETAILS

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ID_SOURCE = random.Random()  # seeded from os.urandom


def new_id(length: int = 13) -> str:
    # Ids must be unique, not secret: one draw from a PRNG seeded by the OS per id (the OS
    # source per id was a fifth of the sandbox's time: several ids for each of 15,000 items
    # of a batch).
    raw = _ID_SOURCE.getrandbits(8 * length)
    alphabet, size = _ID_ALPHABET, len(_ID_ALPHABET)
    chars = []
    for _ in range(length):
        raw, index = divmod(raw, size)
        chars.append(alphabet[index])
    return "".join(chars)


def debug_id() -> str:
    return f"{_ID_SOURCE.getrandbits(52):013x}"


@functools.lru_cache(maxsize=256)  # every item of a poll carries the same moment
def iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")



class DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _pairs_without_duplicates(pairs):
    out = dict(pairs)
    if len(out) != len(pairs):  # the rare case: find the repeated key
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return out


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys, numbers as Decimal."""
    return json.loads(data.decode("utf-8"), parse_float=Decimal, parse_int=Decimal,
                      parse_constant=_reject_constant,
                      object_pairs_hook=_pairs_without_duplicates)


class DropConnection(ConnectionResetError):
    """Raised out of the WSGI app after closing the socket: werkzeug treats it as a
    connection the client dropped and answers nothing."""


def json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(status: int, body: Any, headers: dict | None = None) -> Response:
    resp = Response(json.dumps(body, default=json_default), status=status,
                    mimetype="application/json")
    resp.headers["Paypal-Debug-Id"] = (body.get("debug_id") if isinstance(body, dict)
                                       and body.get("debug_id") else debug_id())
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def paypal_error(status: int, name: str, message: str, details: list | None = None,
                 links: list | None = None, information_link: str = INFORMATION_LINK
                 ) -> Response:
    body: dict[str, Any] = {"name": name, "message": message, "debug_id": debug_id(),
                            "information_link": information_link}
    if details is not None:
        body["details"] = details
    body["links"] = links if links is not None else []
    return json_response(status, body)


def validation_error(details: list[dict]) -> Response:
    return paypal_error(400, "VALIDATION_ERROR", "Invalid request - see details",
                        details=details[:MAX_DETAILS])


WEBHOOK_CERT_PATH = "/_sandbox/webhook-cert.pem"


def base_of(event: dict) -> str | None:
    """The sandbox's own address, as the event's resource links name it."""
    for link in (event.get("resource") or {}).get("links") or ():
        parts = urllib.parse.urlsplit(link.get("href", ""))
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None
