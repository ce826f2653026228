"""A local PayPal Payouts (batch) sandbox: a WSGI app that speaks PayPal's HTTP protocol.

It replaces PayPal only at the network edge, for the PayPal adapter's tests, fault-injection
tests and the demo. It is a test/demo tool: settlement's domain code never imports it.

What it does, in PayPal's own words where the OpenAPI document
(``sandboxes/specs/paypal/payments_payouts_batch_v1.json``) has them:

* ``POST /v1/oauth2/token``: client credentials (HTTP basic auth with the configured client
  id and secret, form body ``grant_type=client_credentials``) give a bearer token. Tokens
  expire by the sandbox clock, so ``/_sandbox/advance`` past their lifetime expires them.
* ``POST /v1/payments/payouts``: every body is validated against the document's request
  schema (``create_payout_request``, $refs resolved, JSON Schema draft 4 semantics, OpenAPI
  ``nullable`` honoured), plus the checks PayPal makes that the document leaves out: the
  recipient type is one of the document's ``recipient_enum``, the receiver matches its type,
  the amount is a positive plain decimal with at most the currency's minor digits, the
  currency is one PayPal pays out in. Any violation refuses the WHOLE batch with
  ``400 VALIDATION_ERROR`` and ``details: [{field, location, issue}]``, the field named the
  way PayPal names it (``items[1].receiver``). A ``sender_batch_id`` used within 30 days is
  refused with ``400 USER_BUSINESS_ERROR`` as PayPal refuses it: the detail (field
  ``SENDER_BATCH_ID``) carries a ``link`` list with the original batch (rel ``self``, GET)
  and the top-level ``links`` is empty. More than 15,000 items is a
  ``VALIDATION_ERROR``. A ``PayPal-Request-Id`` header seen within 30 days replays the
  stored answer of that request. Success is ``201`` with ``batch_header`` and ``links``.
* ``GET /v1/payments/payouts/{payout_batch_id}`` (``page``, ``page_size``,
  ``total_required``, ``fields``), ``GET /v1/payments/payouts-item/{payout_item_id}`` and
  ``POST /v1/payments/payouts-item/{payout_item_id}/cancel`` (UNCLAIMED -> RETURNED).

Item outcomes are scripted by the receiver, so tests can choose them: the part before ``@``
(or the whole receiver for PHONE and PAYPAL_ID) ending in ``+fail`` -> FAILED,
``+unclaimed`` -> UNCLAIMED, ``+returned`` -> RETURNED, ``+onhold`` -> ONHOLD,
``+blocked`` -> BLOCKED, ``+pending`` -> stays PENDING; anything else -> SUCCESS.

A batch is PENDING when created. Every GET of the batch or of one of its items is one poll;
each ``polls_per_step`` polls (default 1) move it one step: PENDING -> PROCESSING ->
SUCCESS, and at SUCCESS its items take their scripted outcomes (``polls_per_step=0``
completes a batch at its first poll). An UNCLAIMED item turns RETURNED 30 days (sandbox
clock) after it became UNCLAIMED.

Sandbox control API (not PayPal's; no authentication), under ``/_sandbox``:

* ``POST /_sandbox/faults`` ``{"next": [{"kind": K, "count": n, "on": OP, "seconds": s}]}``
  queues faults for the next requests of operation OP (``create`` by default; ``token``,
  ``get``, ``cancel`` or ``any``). Kinds that strike before anything is recorded:
  ``http_500``, ``http_503``, ``drop_connection`` (the socket is closed without an answer),
  ``delay`` (sleeps ``seconds`` then answers normally). Kinds for ``create`` that strike
  after the batch is accepted and recorded (a refused request does not use them up):
  ``timeout_after_accept`` (records, then sleeps ``seconds``, default
  ``timeout_after_accept_seconds``, before answering, so a client with a shorter timeout
  never learns the outcome), ``http_500_after_accept``, ``drop_connection_after_accept``,
  ``deny_batch`` (the batch is DENIED: nothing is paid, its items are FAILED with
  INSUFFICIENT_FUNDS). For one operation the queue is consumed in order.
  ``GET /_sandbox/faults`` shows the queue and the faults applied so far.
* ``POST /_sandbox/reset``: forget batches, faults, events and the clock offset (issued
  tokens stay valid).
* ``GET /_sandbox/batches`` (``?sender_batch_id=``): every batch and item as recorded.
* ``POST /_sandbox/advance`` ``{"days": 31, "seconds": 0}``: move the sandbox clock.
* ``GET /_sandbox/events``: the webhook events emitted, with their delivery result.
* ``POST /_sandbox/items/{payout_item_id}`` ``{"transaction_status": S}``: what PayPal does
  to an item later: a SUCCESS item becomes REFUNDED, REVERSED or BLOCKED, an UNCLAIMED one
  RETURNED or SUCCESS (claimed).
* ``GET|POST /_sandbox/config``: read or change ``polls_per_step``,
  ``timeout_after_accept_seconds``, ``webhook_url``, ``webhook_timeout_seconds``,
  ``token_ttl_seconds``.
* ``GET /_sandbox/webhook-cert.pem``: the certificate the webhook events are signed with.

Webhooks: each event is signed as PayPal signs them (PAYPAL-TRANSMISSION-SIG over
``id|time|webhook_id|crc32(body)``, SHA256withRSA, PAYPAL-CERT-URL naming the certificate
above; the key is made when first needed). With ``webhook_url`` configured, the item events PAYMENT.PAYOUTS-ITEM.SUCCEEDED,
.FAILED, .UNCLAIMED, .RETURNED, .HELD, .BLOCKED (and PAYMENT.PAYOUTSBATCH.SUCCESS / .DENIED)
are POSTed synchronously, best effort, when the state changes (on a poll, a cancel or an
advance), as ``{id, event_type, resource_type, create_time, summary, resource}``.

Run it with ``serve(...)`` from a test (background thread) or standalone:
``python -m sandboxes.paypal --port 8765``.

State lives in memory behind one lock. Amounts stay decimal strings; totals are computed
with Decimal, never float.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import functools
import json
import random
import re
import secrets
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from settlement.payouts.webhook_signature import Signer
from settlement.runtime import tune_gc_for_bulk_work

SPEC_PATH = (Path(__file__).resolve().parent.parent / "specs" / "paypal"
             / "payments_payouts_batch_v1.json")

INFORMATION_LINK = "https://developer.paypal.com/docs/api/payments.payouts-batch/#errors"
MAX_ITEMS = 15_000
DUPLICATE_WINDOW = dt.timedelta(days=30)
REQUEST_ID_WINDOW = dt.timedelta(days=30)
UNCLAIMED_RETURNED_AFTER = dt.timedelta(days=30)
MAX_DETAILS = 100

# Currencies PayPal pays out in, with their minor digits (PayPal's currency-codes page:
# HUF, JPY and TWD take no decimals).
PAYPAL_CURRENCIES: dict[str, int] = {
    code: 2 for code in (
        "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "ILS", "MYR", "MXN", "NZD",
        "NOK", "PHP", "PLN", "GBP", "RUB", "SGD", "SEK", "CHF", "THB", "USD")
}
PAYPAL_CURRENCIES.update({"HUF": 0, "JPY": 0, "TWD": 0})

_AMOUNT_VALUE = re.compile(r"[0-9]+(?:\.([0-9]+))?", re.ASCII)
_EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
                    re.ASCII)
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{5,20}", re.ASCII)
_PAYPAL_ID = re.compile(r"[A-Z0-9]{13}", re.ASCII)

# Receiver suffix -> scripted final transaction_status.
OUTCOME_SUFFIXES: dict[str, str] = {
    "+fail": "FAILED",
    "+unclaimed": "UNCLAIMED",
    "+returned": "RETURNED",
    "+onhold": "ONHOLD",
    "+blocked": "BLOCKED",
    "+pending": "PENDING",
}

# Item errors the sandbox reports per outcome: (name, message).
OUTCOME_ERRORS: dict[str, tuple[str, str]] = {
    "FAILED": ("RECEIVER_UNREGISTERED", "Receiver is unregistered."),
    "UNCLAIMED": ("RECEIVER_UNREGISTERED", "Receiver is unregistered."),
    "RETURNED": ("RECEIVER_REFUSED", "Receiver refused the payment."),
    "BLOCKED": ("RISK_DECLINE", "The payment was blocked by risk review."),
}
DENIED_ERROR = ("INSUFFICIENT_FUNDS", "Sender does not have sufficient funds.")

ITEM_EVENTS: dict[str, tuple[str, str]] = {
    "SUCCESS": ("PAYMENT.PAYOUTS-ITEM.SUCCEEDED", "A payout item has succeeded."),
    "FAILED": ("PAYMENT.PAYOUTS-ITEM.FAILED", "A payout item has failed."),
    "UNCLAIMED": ("PAYMENT.PAYOUTS-ITEM.UNCLAIMED", "A payout item is unclaimed."),
    "RETURNED": ("PAYMENT.PAYOUTS-ITEM.RETURNED", "A payout item was returned."),
    "ONHOLD": ("PAYMENT.PAYOUTS-ITEM.HELD", "A payout item is on hold."),
    "BLOCKED": ("PAYMENT.PAYOUTS-ITEM.BLOCKED", "A payout item was blocked."),
    "REFUNDED": ("PAYMENT.PAYOUTS-ITEM.REFUNDED", "A payout item was refunded."),
    "REVERSED": ("PAYMENT.PAYOUTS-ITEM.REVERSED", "A payout item was reversed."),
}

BEFORE_ACCEPT_FAULTS = frozenset({"http_500", "http_503", "drop_connection", "delay"})
AFTER_ACCEPT_FAULTS = frozenset({"timeout_after_accept", "http_500_after_accept",
                                 "drop_connection_after_accept", "deny_batch"})
FAULT_OPERATIONS = frozenset({"create", "get", "token", "cancel", "any"})

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ID_SOURCE = random.Random()  # seeded from os.urandom


# --------------------------------------------------------------------------------------
# The OpenAPI document


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects -> JSON Schema draft 4: `nullable: true` admits null."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            out["type"] = [*kind, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


class OpenAPIDocument:
    """PayPal's Payouts OpenAPI document, with JSON Schema validators for its schemas."""

    def __init__(self, path: str | Path = SPEC_PATH):
        self.path = Path(path)
        self.raw: dict = json.loads(self.path.read_text(encoding="utf-8"))
        self._components = _openapi_to_jsonschema(copy.deepcopy(self.raw["components"]))
        self._validators: dict[str, jsonschema.Draft4Validator] = {}
        self._lock = threading.Lock()

    def operation(self, path: str, method: str) -> dict:
        return self.raw["paths"][path][method.lower()]

    def request_schema_ref(self, path: str, method: str) -> str:
        content = self.operation(path, method)["requestBody"]["content"]
        return content["application/json"]["schema"]["$ref"]

    def response_schema_ref(self, path: str, method: str, status: int | str) -> str:
        response = self.operation(path, method)["responses"][str(status)]
        return response["content"]["application/json"]["schema"]["$ref"]

    def request_example(self, path: str, method: str) -> dict:
        content = self.operation(path, method)["requestBody"]["content"]["application/json"]
        return copy.deepcopy(next(iter(content["examples"].values()))["value"])

    def schema(self, name: str) -> dict:
        return self._components["schemas"][name]

    def enum(self, name: str) -> tuple[str, ...]:
        return tuple(self.schema(name)["enum"])

    def parameter(self, name: str) -> dict:
        return self._components["parameters"][name]

    def validator(self, ref_or_name: str) -> jsonschema.Draft4Validator:
        """A validator for `#/components/...` (or a schema name), $refs resolved in place."""
        ref = ref_or_name if ref_or_name.startswith("#/") else (
            f"#/components/schemas/{ref_or_name}")
        with self._lock:
            found = self._validators.get(ref)
            if found is None:
                schema = _inline_refs({"$ref": ref}, self._components)
                jsonschema.Draft4Validator.check_schema(schema)
                found = self._validators[ref] = jsonschema.Draft4Validator(schema)
            return found

    def parameter_validator(self, name: str) -> jsonschema.Draft4Validator:
        return self.validator(f"#/components/parameters/{name}/schema")


def _inline_refs(node, components: dict, depth: int = 0):
    """The schema with every local $ref replaced by what it points at, so that validating
    15,000 items does not resolve the same references 30,000 times. (The Payouts schemas
    are not recursive; a depth guard keeps a future recursive one from looping.)"""
    if depth > 64:
        raise ValueError("schema references nest too deep (recursive schema?)")
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            target: object = components
            for part in ref[len("#/components/"):].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return _inline_refs(target, components, depth + 1)
        return {k: _inline_refs(v, components, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, components, depth) for v in node]
    return node


_DOCUMENTS: dict[Path, OpenAPIDocument] = {}
_DOCUMENTS_LOCK = threading.Lock()


def load_document(path: str | Path = SPEC_PATH) -> OpenAPIDocument:
    """The (cached) OpenAPI document at `path`."""
    key = Path(path).resolve()
    with _DOCUMENTS_LOCK:
        if key not in _DOCUMENTS:
            _DOCUMENTS[key] = OpenAPIDocument(key)
        return _DOCUMENTS[key]


# --------------------------------------------------------------------------------------
# Helpers


def field_name(parts) -> str:
    """A JSON path as PayPal names fields in error details: ``items[1].amount.value``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _issue_for(error: jsonschema.ValidationError) -> str:
    kind = error.validator
    if kind == "required":
        return "Required field is missing."
    if kind == "type":
        return f"Value must be of type {error.validator_value}."
    if kind == "maxItems":
        return f"Too many items: at most {error.validator_value} are allowed."
    if kind == "minItems":
        return f"Too few items: at least {error.validator_value} required."
    if kind == "maxLength":
        return f"Value is too long: at most {error.validator_value} characters."
    if kind == "minLength":
        return f"Value is too short: at least {error.validator_value} characters."
    if kind == "enum":
        return "Value is not one of the allowed values."
    if kind == "pattern":
        return "Value does not match the required format."
    if kind in ("maximum", "minimum"):
        return "Value is out of range."
    return f"Value is invalid ({kind})."


def schema_error_details(errors, location: str = "body") -> list[dict]:
    """jsonschema errors -> PayPal ``details`` entries, one per field."""
    details: list[dict] = []
    seen: set[str] = set()

    def order(error):
        return ([(0, p, "") if isinstance(p, int) else (1, 0, p) for p in error.absolute_path],
                error.validator)

    for error in sorted(errors, key=order):
        parts = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [p for p in error.validator_value if p not in error.instance]
            names = [field_name([*parts, m]) for m in missing] or [field_name(parts)]
        else:
            names = [field_name(parts)]
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            detail = {"field": name, "location": location, "issue": _issue_for(error)}
            if isinstance(error.instance, (str, int, Decimal)) and not isinstance(
                    error.instance, bool) and error.validator != "required":
                detail["value"] = str(error.instance)[:127]
            details.append(detail)
    return details


def _new_id(length: int = 13) -> str:
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


def _debug_id() -> str:
    return f"{_ID_SOURCE.getrandbits(52):013x}"


@functools.lru_cache(maxsize=256)  # every item of a poll carries the same moment
def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _format_amount(total: Decimal, currency: str) -> str:
    digits = PAYPAL_CURRENCIES.get(currency, 2)
    return str(total.quantize(Decimal(1).scaleb(-digits)))


def scripted_outcome(receiver: str, recipient_type: str) -> str:
    """The final transaction_status the sandbox gives an item, chosen by its receiver."""
    local = receiver.rsplit("@", 1)[0] if recipient_type == "EMAIL" else receiver
    local = local.lower()
    for suffix, outcome in OUTCOME_SUFFIXES.items():
        if local.endswith(suffix):
            return outcome
    return "SUCCESS"


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _pairs_without_duplicates(pairs):
    out = dict(pairs)
    if len(out) != len(pairs):  # the rare case: find the repeated key
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys, numbers as Decimal."""
    return json.loads(data.decode("utf-8"), parse_float=Decimal, parse_int=Decimal,
                      parse_constant=_reject_constant,
                      object_pairs_hook=_pairs_without_duplicates)


class _DropConnection(ConnectionResetError):
    """Raised out of the WSGI app after closing the socket: werkzeug treats it as a
    connection the client dropped and answers nothing."""


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_response(status: int, body: Any, headers: dict | None = None) -> Response:
    resp = Response(json.dumps(body, default=_json_default), status=status,
                    mimetype="application/json")
    resp.headers["Paypal-Debug-Id"] = (body.get("debug_id") if isinstance(body, dict)
                                       and body.get("debug_id") else _debug_id())
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def paypal_error(status: int, name: str, message: str, details: list | None = None,
                 links: list | None = None, information_link: str = INFORMATION_LINK
                 ) -> Response:
    body: dict[str, Any] = {"name": name, "message": message, "debug_id": _debug_id(),
                            "information_link": information_link}
    if details is not None:
        body["details"] = details
    body["links"] = links if links is not None else []
    return _json_response(status, body)


def validation_error(details: list[dict]) -> Response:
    return paypal_error(400, "VALIDATION_ERROR", "Invalid request - see details",
                        details=details[:MAX_DETAILS])


WEBHOOK_CERT_PATH = "/_sandbox/webhook-cert.pem"


def _base_of(event: dict) -> str | None:
    """The sandbox's own address, as the event's resource links name it."""
    for link in (event.get("resource") or {}).get("links") or ():
        parts = urllib.parse.urlsplit(link.get("href", ""))
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


# --------------------------------------------------------------------------------------
# State


@dataclass
class SandboxConfig:
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    token_ttl_seconds: int = 32_400
    polls_per_step: int = 1
    timeout_after_accept_seconds: float = 5.0
    webhook_url: str | None = None
    webhook_timeout_seconds: float = 2.0
    webhook_id: str = "WH-SANDBOX"  # signed into each event, as PayPal does (settings too)
    spec_path: str | Path = SPEC_PATH

    RUNTIME_KEYS = ("polls_per_step", "timeout_after_accept_seconds", "webhook_url",
                    "webhook_timeout_seconds", "token_ttl_seconds")

    def public(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in
                ("client_id", *self.RUNTIME_KEYS)}


@dataclass
class _Item:
    payout_item_id: str
    batch: "_Batch"
    index: int
    request: dict
    recipient_type: str
    outcome: str
    status: str = "PENDING"
    transaction_id: str | None = None
    time_processed: dt.datetime | None = None
    errors: dict | None = None

    @property
    def currency(self) -> str:
        return self.request["amount"]["currency"]


@dataclass
class _ItemEvent:
    """An item's webhook event, rendered only when it is sent or read: a batch makes 15,000
    of them, which with no webhook configured nobody may ever read. It keeps what the item
    was at that moment (a later event, RETURNED after UNCLAIMED, changes the item)."""
    event_type: str
    summary: str
    then: _Item  # a copy of the item as it was
    base: str
    now: dt.datetime


@dataclass
class _Batch:
    payout_batch_id: str
    sender_batch_id: str | None
    request: dict
    time_created: dt.datetime
    request_id: str | None = None
    items: list[_Item] = field(default_factory=list)
    polls: int = 0
    step: int = 0  # 0 PENDING, 1 PROCESSING, 2 done
    denied: bool = False
    time_completed: dt.datetime | None = None
    # The items' total, summed once: a batch's items never change, and every page of
    # every poll shows it.
    totals: tuple[str, Decimal] | None = None

    @property
    def status(self) -> str:
        if self.denied:
            return "DENIED"
        return ("PENDING", "PROCESSING", "SUCCESS")[self.step]


class PayPalSandbox:
    """The WSGI application. All state is in memory, guarded by one lock."""

    def __init__(self, config: SandboxConfig | None = None, **overrides):
        self.config = config or SandboxConfig(**overrides)
        if config is not None and overrides:
            raise TypeError("give a SandboxConfig or keyword settings, not both")
        self.document = load_document(self.config.spec_path)
        self._create_path = "/v1/payments/payouts"
        self._request_validator = self.document.validator(
            self.document.request_schema_ref(self._create_path, "post"))
        self._fast_request_validator = fastjsonschema.compile(
            self._request_validator.schema, use_formats=False)
        self.recipient_types = self.document.enum("recipient_enum")
        self.recipient_wallets = self.document.enum("recipient_wallet_enum")
        self.purposes = self.document.enum("purpose_enum")
        self._lock = threading.RLock()
        self._signer: Signer | None = None  # made on the first signed event
        self._tokens: dict[str, dt.datetime] = {}
        self._interrupt = threading.Event()
        self._reset_locked()
        self.url_map = Map([
            Rule("/v1/oauth2/token", methods=["POST"], endpoint="token"),
            Rule("/v1/payments/payouts", methods=["POST"], endpoint="create"),
            Rule("/v1/payments/payouts/<batch_id>", methods=["GET"], endpoint="get_batch"),
            Rule("/v1/payments/payouts-item/<item_id>", methods=["GET"], endpoint="get_item"),
            Rule("/v1/payments/payouts-item/<item_id>/cancel", methods=["POST"],
                 endpoint="cancel_item"),
            Rule("/_sandbox/faults", methods=["GET", "POST"], endpoint="sandbox_faults"),
            Rule("/_sandbox/reset", methods=["POST"], endpoint="sandbox_reset"),
            Rule("/_sandbox/batches", methods=["GET"], endpoint="sandbox_batches"),
            Rule("/_sandbox/advance", methods=["POST"], endpoint="sandbox_advance"),
            Rule("/_sandbox/events", methods=["GET"], endpoint="sandbox_events"),
            Rule(WEBHOOK_CERT_PATH, methods=["GET"], endpoint="sandbox_webhook_cert"),
            Rule("/_sandbox/config", methods=["GET", "POST"], endpoint="sandbox_config"),
            Rule("/_sandbox/items/<item_id>", methods=["POST"], endpoint="sandbox_item"),
        ], strict_slashes=False)
        self._operations = {"token": "token", "create": "create", "get_batch": "get",
                            "get_item": "get", "cancel_item": "cancel"}

    # -- state -------------------------------------------------------------------------

    def _reset_locked(self) -> None:
        self._batches: dict[str, _Batch] = {}
        self._items: dict[str, _Item] = {}
        self._by_sender_batch_id: dict[str, list[_Batch]] = {}
        self._request_ids: dict[str, tuple[dt.datetime, int, dict]] = {}
        self._unclaimed: dict[str, _Item] = {}
        self._faults: list[dict] = []
        self._applied_faults: list[dict] = []
        self._events: list[dict] = []  # {"event": dict or _ItemEvent, "delivered", "error"}
        self._clock_offset = dt.timedelta(0)

    def reset(self) -> None:
        with self._lock:
            self._interrupt.set()
            self._interrupt = threading.Event()
            self._reset_locked()

    def close(self) -> None:
        """Wake any request sleeping in a fault, so that the server can stop at once."""
        with self._lock:
            self._interrupt.set()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc) + self._clock_offset

    def _sleep(self, seconds: float) -> None:
        with self._lock:
            event = self._interrupt
        event.wait(max(0.0, float(seconds)))

    # -- WSGI --------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        return self.wsgi_app(environ, start_response)

    def wsgi_app(self, environ, start_response):
        request = Request(environ)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            response = paypal_error(404, "RESOURCE_NOT_FOUND",
                                    "The specified resource does not exist.")
        except MethodNotAllowed:
            response = paypal_error(405, "METHOD_NOT_SUPPORTED",
                                    "The server does not implement the requested HTTP method.")
        else:
            operation = self._operations.get(endpoint)
            response = None
            if operation is not None:
                fault = self._take_fault(operation, BEFORE_ACCEPT_FAULTS)
                if fault is not None:
                    response = self._apply_before_fault(fault, environ)
            if response is None:
                response = getattr(self, f"_on_{endpoint}")(request, **args)
        return response(environ, start_response)

    # -- faults ------------------------------------------------------------------------

    def _take_fault(self, operation: str, kinds: frozenset) -> dict | None:
        """The first queued fault for `operation`, used up if its kind is in `kinds`."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault["on"] not in (operation, "any"):
                    continue
                if fault["kind"] not in kinds:
                    return None
                fault["count"] -= 1
                if fault["count"] <= 0:
                    del self._faults[index]
                applied = {"kind": fault["kind"], "on": operation, "at": _iso(self.now())}
                self._applied_faults.append(applied)
                return dict(fault)
        return None

    def _apply_before_fault(self, fault: dict, environ) -> Response | None:
        kind = fault["kind"]
        if kind == "http_500":
            return paypal_error(500, "INTERNAL_SERVER_ERROR", "An internal server error occurred.")
        if kind == "http_503":
            return paypal_error(503, "SERVICE_UNAVAILABLE", "Service Unavailable.")
        if kind == "drop_connection":
            self._drop(environ)
        if kind == "delay":
            self._sleep(fault.get("seconds") or 0)
        return None

    @staticmethod
    def _drop(environ):
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise _DropConnection("PayPal sandbox fault: connection dropped")

    # -- authentication ----------------------------------------------------------------

    def _on_token(self, request: Request) -> Response:
        auth = request.authorization
        if (auth is None or auth.type != "basic"
                or not secrets.compare_digest(str(auth.username or ""), self.config.client_id)
                or not secrets.compare_digest(str(auth.password or ""),
                                              self.config.client_secret)):
            resp = _json_response(401, {"error": "invalid_client",
                                        "error_description": "Client Authentication failed"})
            resp.headers["WWW-Authenticate"] = 'Basic realm="PayPal sandbox"'
            return resp
        if request.form.get("grant_type") != "client_credentials":
            return _json_response(400, {"error": "unsupported_grant_type",
                                        "error_description": "Grant Type is NULL or unsupported"})
        token = "A21AA" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = self.now() + dt.timedelta(
                seconds=int(self.config.token_ttl_seconds))
        return _json_response(200, {
            "scope": "https://uri.paypal.com/services/payments/payouts "
                     "https://uri.paypal.com/payments/payouts",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-SANDBOX0000000000",
            "expires_in": int(self.config.token_ttl_seconds),
            "nonce": f"{_iso(self.now())}{secrets.token_hex(8)}",
        })

    def _authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        issue = None
        if scheme.lower() != "bearer" or not token.strip():
            issue = "Missing bearer access token."
        else:
            with self._lock:
                expires = self._tokens.get(token.strip())
                if expires is None:
                    issue = "Access token is unknown."
                elif expires <= self.now():
                    issue = "Access token has expired."
        if issue is None:
            return None
        return paypal_error(
            401, "AUTHENTICATION_FAILURE",
            "Authentication failed due to missing authorization header, or invalid "
            "authentication credentials.",
            details=[{"field": "Authorization", "location": "header", "issue": issue}],
            information_link="https://developer.paypal.com/api/rest/authentication/")

    # -- create ------------------------------------------------------------------------

    def _business_details(self, body: Any) -> list[dict]:
        """PayPal's checks that the OpenAPI document does not encode."""
        details: list[dict] = []
        if not isinstance(body, dict):
            return details
        header = body.get("sender_batch_header")
        header = header if isinstance(header, dict) else {}
        header_type = header.get("recipient_type")
        if isinstance(header_type, str) and header_type not in self.recipient_types:
            details.append({"field": "sender_batch_header.recipient_type", "location": "body",
                            "issue": "Recipient type is invalid.", "value": header_type})
            header_type = None
        items = body.get("items")
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            return details
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            prefix = f"items[{index}]"
            kind = item.get("recipient_type", header_type)
            if kind is None:
                details.append({"field": f"{prefix}.recipient_type", "location": "body",
                                "issue": "Recipient type is required when the "
                                         "sender_batch_header has none."})
            elif isinstance(kind, str) and kind not in self.recipient_types:
                details.append({"field": f"{prefix}.recipient_type", "location": "body",
                                "issue": "Recipient type is invalid.", "value": kind})
            elif isinstance(kind, str) and isinstance(item.get("receiver"), str):
                receiver = item["receiver"]
                pattern = {"EMAIL": _EMAIL, "PHONE": _PHONE, "PAYPAL_ID": _PAYPAL_ID}[kind]
                if not pattern.fullmatch(receiver):
                    details.append({"field": f"{prefix}.receiver", "location": "body",
                                    "issue": "Receiver is invalid or does not match with type",
                                    "value": receiver[:127]})
            wallet = item.get("recipient_wallet")
            if isinstance(wallet, str) and wallet not in self.recipient_wallets:
                details.append({"field": f"{prefix}.recipient_wallet", "location": "body",
                                "issue": "Recipient wallet is invalid.", "value": wallet})
            amount = item.get("amount")
            if not isinstance(amount, dict):
                continue
            currency, value = amount.get("currency"), amount.get("value")
            if isinstance(currency, str) and currency not in PAYPAL_CURRENCIES:
                details.append({"field": f"{prefix}.amount.currency", "location": "body",
                                "issue": "Currency code is invalid or is not currently "
                                         "supported.", "value": currency[:127]})
                currency = None
            if isinstance(value, str):
                match = _AMOUNT_VALUE.fullmatch(value)
                issue = None
                if match is None or len(value) > 32:
                    issue = "Amount value must be a plain decimal number, such as 10.50."
                elif Decimal(value) <= 0:
                    issue = "Amount value must be greater than zero."
                elif isinstance(currency, str) and len(match.group(1) or "") > \
                        PAYPAL_CURRENCIES[currency]:
                    issue = (f"Amount value has more decimal places than {currency} "
                             f"allows ({PAYPAL_CURRENCIES[currency]}).")
                if issue:
                    details.append({"field": f"{prefix}.amount.value", "location": "body",
                                    "issue": issue, "value": value[:127]})
        return details

    def _on_create(self, request: Request) -> Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        request_id = request.headers.get("PayPal-Request-Id")
        if request_id is not None:
            errors = list(self.document.parameter_validator("paypal_request_id")
                          .iter_errors(request_id))
            if errors:
                return validation_error([{"field": "PayPal-Request-Id", "location": "header",
                                          "issue": _issue_for(errors[0])}])
            with self._lock:
                stored = self._request_ids.get(request_id)
                if stored is not None and self.now() - stored[0] < REQUEST_ID_WINDOW:
                    return _json_response(stored[1], copy.deepcopy(stored[2]))
        if request.mimetype != "application/json":
            return paypal_error(415, "UNSUPPORTED_MEDIA_TYPE",
                                "The server does not support the request payload's media type.")
        try:
            body = parse_json(request.get_data(cache=True))
        except _DuplicateKey as exc:
            return validation_error([{"field": exc.key, "location": "body",
                                      "issue": "Field appears more than once."}])
        except (ValueError, UnicodeDecodeError):
            return paypal_error(400, "MALFORMED_REQUEST",
                                "Incoming JSON request does not map to API request")
        # The compiled validator answers the common case (a valid batch) fast; only an
        # invalid body pays for jsonschema's detailed error walk.
        try:
            self._fast_request_validator(body)
            details = []
        except fastjsonschema.JsonSchemaException:
            details = schema_error_details(self._request_validator.iter_errors(body))
        seen = {d["field"] for d in details}
        details += [d for d in self._business_details(body) if d["field"] not in seen]
        if details:
            return validation_error(details)

        base = request.host_url.rstrip("/")
        with self._lock:
            now = self.now()
            header = body["sender_batch_header"]
            sender_batch_id = header.get("sender_batch_id")
            if sender_batch_id is not None:
                for original in reversed(self._by_sender_batch_id.get(sender_batch_id, [])):
                    if now - original.time_created < DUPLICATE_WINDOW:
                        # PayPal's exact shape (specs/paypal/README.md): the link to
                        # the original batch sits inside the detail, not in `links`.
                        return paypal_error(
                            400, "USER_BUSINESS_ERROR", "User business error.",
                            details=[{"field": "SENDER_BATCH_ID", "location": "body",
                                      "issue": "Batch with given sender_batch_id already "
                                               "exists",
                                      "link": [self._batch_link(
                                          base, original.payout_batch_id)]}],
                            links=[])
            fault = self._take_fault("create", AFTER_ACCEPT_FAULTS)
            batch = self._record_batch(body, now, request_id)
            if fault is not None and fault["kind"] == "deny_batch":
                events = self._deny_locked(batch, now, base)
            else:
                events = []
            answer = {"batch_header": {
                          "payout_batch_id": batch.payout_batch_id,
                          "batch_status": batch.status,
                          "sender_batch_header": self._echo_header(batch)},
                      "links": [self._batch_link(base, batch.payout_batch_id)]}
            if request_id is not None:
                self._request_ids[request_id] = (now, 201, copy.deepcopy(answer))
        self._deliver(events)
        if fault is not None:
            kind = fault["kind"]
            if kind == "timeout_after_accept":
                seconds = fault.get("seconds")
                self._sleep(self.config.timeout_after_accept_seconds if seconds is None
                            else seconds)
            elif kind == "http_500_after_accept":
                return paypal_error(500, "INTERNAL_SERVER_ERROR",
                                    "An internal server error occurred.")
            elif kind == "drop_connection_after_accept":
                self._drop(request.environ)
        return _json_response(201, answer)

    def _record_batch(self, body: dict, now: dt.datetime, request_id: str | None) -> _Batch:
        header = body["sender_batch_header"]
        batch_id = _new_id()
        while batch_id in self._batches:
            batch_id = _new_id()
        batch = _Batch(payout_batch_id=batch_id, sender_batch_id=header.get("sender_batch_id"),
                       request=body, time_created=now, request_id=request_id)
        header_type = header.get("recipient_type")
        for index, raw in enumerate(batch.request["items"]):
            kind = raw.get("recipient_type", header_type)
            item_id = _new_id()
            while item_id in self._items:
                item_id = _new_id()
            item = _Item(payout_item_id=item_id, batch=batch, index=index, request=raw,
                         recipient_type=kind, outcome=scripted_outcome(raw["receiver"], kind))
            batch.items.append(item)
            self._items[item_id] = item
        self._batches[batch_id] = batch
        if batch.sender_batch_id is not None:
            self._by_sender_batch_id.setdefault(batch.sender_batch_id, []).append(batch)
        return batch

    # -- progress ----------------------------------------------------------------------

    def _poll_locked(self, batch: _Batch, now: dt.datetime, base: str) -> list[dict | _ItemEvent]:
        if batch.denied or batch.step >= 2:
            return []
        batch.polls += 1
        per_step = int(self.config.polls_per_step)
        step = 2 if per_step <= 0 else min(2, batch.polls // per_step)
        if step <= batch.step:
            return []
        batch.step = step
        if step < 2:
            return []
        batch.time_completed = now
        events = []
        for item in batch.items:
            if item.outcome == "PENDING":
                continue
            events += self._set_status_locked(item, item.outcome, now, base)
        events.append(self._event("PAYMENT.PAYOUTSBATCH.SUCCESS", "batch",
                                  "Payouts batch completed successfully.",
                                  self._batch_header(batch), now))
        return events

    def _set_status_locked(self, item: _Item, status: str, now: dt.datetime,
                           base: str) -> list[dict | _ItemEvent]:
        item.status = status
        item.time_processed = now
        if status in ("SUCCESS", "UNCLAIMED", "RETURNED", "ONHOLD") and not item.transaction_id:
            item.transaction_id = _new_id(17)
        if status in OUTCOME_ERRORS and (item.errors is None or status != "RETURNED"):
            name, message = OUTCOME_ERRORS[status]
            item.errors = {"name": name, "message": message, "debug_id": _debug_id(),
                           "information_link": INFORMATION_LINK}
        if status == "UNCLAIMED":
            self._unclaimed[item.payout_item_id] = item
        else:
            self._unclaimed.pop(item.payout_item_id, None)
        if status in ITEM_EVENTS:
            event_type, summary = ITEM_EVENTS[status]
            return [_ItemEvent(event_type, summary, copy.copy(item), base, now)]
        return []

    def _deny_locked(self, batch: _Batch, now: dt.datetime, base: str) -> list[dict | _ItemEvent]:
        batch.denied = True
        batch.time_completed = now
        name, message = DENIED_ERROR
        for item in batch.items:
            item.status = "FAILED"
            item.time_processed = now
            item.errors = {"name": name, "message": message, "debug_id": _debug_id(),
                           "information_link": INFORMATION_LINK}
        return [self._event("PAYMENT.PAYOUTSBATCH.DENIED", "batch",
                            "Payouts batch was denied.", self._batch_header(batch), now)]

    def _expire_unclaimed_locked(self, now: dt.datetime, base: str) -> list[dict | _ItemEvent]:
        events = []
        for item in list(self._unclaimed.values()):
            if item.time_processed is not None and \
                    now - item.time_processed >= UNCLAIMED_RETURNED_AFTER:
                events += self._set_status_locked(item, "RETURNED", now, base)
        return events

    def _event(self, event_type: str, resource_type: str, summary: str, resource: dict,
               now: dt.datetime) -> dict:
        return {"id": "WH-" + _new_id(17), "event_version": "1.0", "create_time": _iso(now),
                "resource_type": resource_type, "event_type": event_type,
                "summary": summary, "resource": resource}

    def _rendered(self, event: dict | _ItemEvent) -> dict:
        if isinstance(event, dict):
            return event
        return self._event(event.event_type, "payouts_item", event.summary,
                           self._render_item(event.then, event.base, with_sender_batch_id=True),
                           event.now)

    def _deliver(self, events: list) -> None:
        """Record, then POST each event to the webhook URL (best effort, synchronous)."""
        if not events:
            return
        url = self.config.webhook_url
        if not url:  # recorded only, rendered when read: one lock for the lot
            with self._lock:
                self._events.extend({"event": event, "delivered": None, "error": None}
                                    for event in events)
            return
        for event in events:
            event = self._rendered(event)
            record = {"event": event, "delivered": None, "error": None}
            try:
                body = json.dumps(event, default=_json_default).encode("utf-8")
                req = urllib.request.Request(
                    url, data=body, method="POST",
                    headers={"Content-Type": "application/json",
                             **self.webhook_headers(body, event)})
                with urllib.request.urlopen(
                        req, timeout=float(self.config.webhook_timeout_seconds)) as resp:
                    record["delivered"] = 200 <= resp.status < 300
            except (OSError, urllib.error.URLError, ValueError) as exc:
                record["delivered"] = False
                record["error"] = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._events.append(record)

    def webhook_headers(self, body: bytes, event: dict, transmission_id: str | None = None,
                        transmission_time: str | None = None) -> dict:
        """PayPal's PAYPAL-* headers, signed with the sandbox's key; its certificate is
        served at WEBHOOK_CERT_PATH of the sandbox's own address. As PayPal sends them, a
        transmission has an id of its own (a UUID, not the event's id) and the time it is
        sent (not the event's create_time); tests may pin either."""
        with self._lock:
            if self._signer is None:
                self._signer = Signer.generate()
        base = _base_of(event) or "http://127.0.0.1"
        sent = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._signer.headers(body, self.config.webhook_id,
                                    transmission_id or str(uuid.uuid1()),
                                    transmission_time or sent, base + WEBHOOK_CERT_PATH)

    def _on_sandbox_webhook_cert(self, request: Request) -> Response:
        with self._lock:
            if self._signer is None:
                self._signer = Signer.generate()
        return Response(self._signer.certificate_pem, mimetype="application/x-pem-file")

    # -- rendering ---------------------------------------------------------------------

    @staticmethod
    def _batch_link(base: str, batch_id: str) -> dict:
        return {"href": f"{base}/v1/payments/payouts/{batch_id}", "rel": "self",
                "method": "GET", "encType": "application/json"}

    @staticmethod
    def _echo_header(batch: _Batch) -> dict:
        header = batch.request["sender_batch_header"]
        return {key: header[key] for key in
                ("sender_batch_id", "recipient_type", "email_subject", "email_message")
                if key in header}

    def _batch_header(self, batch: _Batch) -> dict:
        out: dict[str, Any] = {
            "payout_batch_id": batch.payout_batch_id,
            "batch_status": batch.status,
            "time_created": _iso(batch.time_created),
        }
        if batch.time_completed is not None:
            out["time_completed"] = _iso(batch.time_completed)
            out["time_closed"] = _iso(batch.time_completed)
        out["funding_source"] = "BALANCE"
        out["sender_batch_header"] = self._echo_header(batch)
        if batch.totals is None:
            currencies = {item.currency for item in batch.items}
            batch.totals = (currencies.pop() if len(currencies) == 1 else "", sum(
                (Decimal(item.request["amount"]["value"]) for item in batch.items), Decimal(0)))
        currency, total = batch.totals
        if currency:
            out["amount"] = {"currency": currency, "value": _format_amount(total, currency)}
            out["fees"] = {"currency": currency, "value": _format_amount(Decimal(0), currency)}
        return out

    def _render_item(self, item: _Item, base: str, with_sender_batch_id: bool) -> dict:
        # A shallow copy: only top-level keys are added; the nested values are never changed.
        detail = dict(item.request)
        detail["recipient_type"] = item.recipient_type
        detail.setdefault("recipient_wallet", "PAYPAL")
        out: dict[str, Any] = {"payout_item_id": item.payout_item_id}
        if item.transaction_id:
            out["transaction_id"] = item.transaction_id
        out["transaction_status"] = item.status
        out["payout_item_fee"] = {"currency": item.currency,
                                  "value": _format_amount(Decimal(0), item.currency)}
        out["payout_batch_id"] = item.batch.payout_batch_id
        if with_sender_batch_id and item.batch.sender_batch_id is not None:
            out["sender_batch_id"] = item.batch.sender_batch_id
        out["payout_item"] = detail
        if item.time_processed is not None:
            out["time_processed"] = _iso(item.time_processed)
        if item.errors is not None:
            out["errors"] = copy.deepcopy(item.errors)
        out["links"] = [{"href": f"{base}/v1/payments/payouts-item/{item.payout_item_id}",
                         "rel": "item", "method": "GET", "encType": "application/json"}]
        return out

    # -- read --------------------------------------------------------------------------

    def _query_int(self, request: Request, name: str, default: int,
                   details: list[dict]) -> int:
        raw = request.args.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            details.append({"field": name, "location": "query",
                            "issue": "Value must be of type integer.", "value": raw[:127]})
            return default
        errors = list(self.document.parameter_validator(name).iter_errors(value))
        if errors or value < 1:  # the document: "a non-zero integer"
            details.append({"field": name, "location": "query",
                            "issue": _issue_for(errors[0]) if errors else
                            "Value must be a non-zero integer.", "value": raw[:127]})
        return value

    def _on_get_batch(self, request: Request, batch_id: str) -> Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        details: list[dict] = []
        page = self._query_int(request, "page", 1, details)
        page_size = self._query_int(request, "page_size", 1000, details)
        total_raw = request.args.get("total_required", "false").lower()
        if total_raw not in ("true", "false"):
            details.append({"field": "total_required", "location": "query",
                            "issue": "Value must be of type boolean.", "value": total_raw})
        if details:
            return validation_error(details)
        wanted = {f.strip() for f in request.args.get("fields", "").split(",") if f.strip()}
        base = request.host_url.rstrip("/")
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return self._not_found("id", batch_id, "path")
            now = self.now()
            events = self._expire_unclaimed_locked(now, base)
            events += self._poll_locked(batch, now, base)
            total = len(batch.items)
            start = (page - 1) * page_size
            body: dict[str, Any] = {}
            if total_raw == "true":
                body["total_items"] = total
                body["total_pages"] = (total + page_size - 1) // page_size
            body["batch_header"] = self._batch_header(batch)
            if not wanted or "items" in wanted or "batch_header" not in wanted:
                body["items"] = [self._render_item(item, base, with_sender_batch_id=False)
                                 for item in batch.items[start:start + page_size]]
            body["links"] = self._page_links(base, batch_id, page, page_size, total,
                                             total_raw == "true")
        self._deliver(events)
        return _json_response(200, body)

    @staticmethod
    def _page_links(base: str, batch_id: str, page: int, page_size: int, total: int,
                    total_required: bool) -> list[dict]:
        def link(rel: str, number: int) -> dict:
            query = urllib.parse.urlencode({"page_size": page_size, "page": number,
                                            "total_required": str(total_required).lower()})
            return {"href": f"{base}/v1/payments/payouts/{batch_id}?{query}", "rel": rel,
                    "method": "GET", "encType": "application/json"}
        last = max(1, (total + page_size - 1) // page_size)
        links = []
        if total_required:
            links.append(link("first", 1))
        if page > 1:
            links.append(link("prev", page - 1))
        links.append(link("self", page))
        if page < last:
            links.append(link("next", page + 1))
        if total_required:
            links.append(link("last", last))
        return links

    @staticmethod
    def _not_found(field_: str, value: str, location: str) -> Response:
        return paypal_error(404, "INVALID_RESOURCE_ID", "Requested resource ID was not found.",
                            details=[{"field": field_, "location": location,
                                      "issue": "Requested resource ID was not found.",
                                      "value": value[:127]}])

    def _on_get_item(self, request: Request, item_id: str) -> Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        base = request.host_url.rstrip("/")
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                return self._not_found("payout_item_id", item_id, "path")
            now = self.now()
            events = self._expire_unclaimed_locked(now, base)
            events += self._poll_locked(item.batch, now, base)
            body = self._render_item(item, base, with_sender_batch_id=True)
        self._deliver(events)
        return _json_response(200, body)

    def _on_cancel_item(self, request: Request, item_id: str) -> Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        base = request.host_url.rstrip("/")
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                return self._not_found("payout_item_id", item_id, "path")
            now = self.now()
            events = self._expire_unclaimed_locked(now, base)
            if item.status != "UNCLAIMED":
                answer = paypal_error(
                    400, "ITEM_CANCELLATION_FAILED",
                    "Only an UNCLAIMED payout item can be cancelled.",
                    details=[{"field": "payout_item_id", "location": "path",
                              "issue": f"The item is {item.status}.", "value": item_id}])
            else:
                events += self._set_status_locked(item, "RETURNED", now, base)
                answer = _json_response(200, self._render_item(item, base, True))
        self._deliver(events)
        return answer

    # -- sandbox control API -----------------------------------------------------------

    @staticmethod
    def _control_body(request: Request) -> tuple[dict | None, Response | None]:
        data = request.get_data(cache=True)
        if not data.strip():
            return {}, None
        try:
            body = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None, _json_response(400, {"error": "body is not JSON"})
        if not isinstance(body, dict):
            return None, _json_response(400, {"error": "body must be a JSON object"})
        return body, None

    def _on_sandbox_faults(self, request: Request) -> Response:
        if request.method == "POST":
            body, error = self._control_body(request)
            if error is not None:
                return error
            queued = []
            for entry in body.get("next") or []:
                if not isinstance(entry, dict):
                    return _json_response(400, {"error": "each fault must be an object"})
                kind = entry.get("kind")
                on = entry.get("on", "create")
                count = entry.get("count", 1)
                seconds = entry.get("seconds")
                if kind not in BEFORE_ACCEPT_FAULTS | AFTER_ACCEPT_FAULTS:
                    return _json_response(400, {"error": f"unknown fault kind {kind!r}"})
                if on not in FAULT_OPERATIONS:
                    return _json_response(400, {"error": f"unknown operation {on!r}"})
                if kind in AFTER_ACCEPT_FAULTS and on != "create":
                    return _json_response(400, {"error": f"{kind} applies to 'create' only"})
                if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                    return _json_response(400, {"error": "count must be a positive integer"})
                if seconds is not None and (not isinstance(seconds, (int, float))
                                            or isinstance(seconds, bool) or seconds < 0):
                    return _json_response(400, {"error": "seconds must be a number >= 0"})
                queued.append({"kind": kind, "count": count, "on": on, "seconds": seconds})
            with self._lock:
                self._faults.extend(queued)
        with self._lock:
            return _json_response(200, {"pending": copy.deepcopy(self._faults),
                                        "applied": copy.deepcopy(self._applied_faults)})

    def _on_sandbox_reset(self, request: Request) -> Response:
        self.reset()
        return _json_response(200, {"reset": True, "now": _iso(self.now())})

    def _on_sandbox_batches(self, request: Request) -> Response:
        wanted = request.args.get("sender_batch_id")
        base = request.host_url.rstrip("/")
        with self._lock:
            events = self._expire_unclaimed_locked(self.now(), base)
            batches = []
            for batch in self._batches.values():
                if wanted is not None and batch.sender_batch_id != wanted:
                    continue
                batches.append({
                    "payout_batch_id": batch.payout_batch_id,
                    "sender_batch_id": batch.sender_batch_id,
                    "batch_status": batch.status,
                    "time_created": _iso(batch.time_created),
                    "polls": batch.polls,
                    "paypal_request_id": batch.request_id,
                    "sender_batch_header": copy.deepcopy(batch.request["sender_batch_header"]),
                    "items": [{
                        "payout_item_id": item.payout_item_id,
                        "sender_item_id": item.request.get("sender_item_id"),
                        "recipient_type": item.recipient_type,
                        "receiver": item.request["receiver"],
                        "amount": copy.deepcopy(item.request["amount"]),
                        "transaction_status": item.status,
                        "transaction_id": item.transaction_id,
                        "scripted_outcome": item.outcome,
                        "time_processed": _iso(item.time_processed),
                    } for item in batch.items],
                })
            body = {"now": _iso(self.now()), "batches": batches}
        self._deliver(events)
        return _json_response(200, body)

    def _on_sandbox_advance(self, request: Request) -> Response:
        body, error = self._control_body(request)
        if error is not None:
            return error
        try:
            delta = dt.timedelta(days=float(body.get("days", 0)),
                                 seconds=float(body.get("seconds", 0)))
        except (TypeError, ValueError):
            return _json_response(400, {"error": "days and seconds must be numbers"})
        if delta < dt.timedelta(0):
            return _json_response(400, {"error": "the sandbox clock only moves forward"})
        base = request.host_url.rstrip("/")
        with self._lock:
            self._clock_offset += delta
            now = self.now()
            events = self._expire_unclaimed_locked(now, base)
        self._deliver(events)
        return _json_response(200, {"now": _iso(now)})

    def _on_sandbox_item(self, request: Request, item_id: str) -> Response:
        """What PayPal does to a paid item later: the receiver refunds it (REFUNDED), a
        dispute reverses it (REVERSED), a compliance review blocks it (BLOCKED), or an
        unclaimed one is returned (RETURNED)."""
        body, error = self._control_body(request)
        if error is not None:
            return error
        status = body.get("transaction_status")
        allowed = {"SUCCESS": ("REFUNDED", "REVERSED", "BLOCKED"), "UNCLAIMED": ("RETURNED",
                                                                                  "SUCCESS")}
        base = request.host_url.rstrip("/")
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                return _json_response(404, {"error": f"no item {item_id}"})
            if status not in allowed.get(item.status, ()):
                return _json_response(409, {"error": f"an item {item.status} cannot become "
                                                     f"{status!r}"})
            events = self._set_status_locked(item, status, self.now(), base)
        self._deliver(events)
        return _json_response(200, {"payout_item_id": item_id, "transaction_status": status})

    def _on_sandbox_events(self, request: Request) -> Response:
        with self._lock:
            for record in self._events:  # rendered once: an event's id never changes
                record["event"] = self._rendered(record["event"])
            return _json_response(200, {"events": copy.deepcopy(self._events)})

    def _on_sandbox_config(self, request: Request) -> Response:
        if request.method == "POST":
            body, error = self._control_body(request)
            if error is not None:
                return error
            unknown = set(body) - set(SandboxConfig.RUNTIME_KEYS)
            if unknown:
                return _json_response(400, {"error": f"not settable: {sorted(unknown)}"})
            with self._lock:
                for key, value in body.items():
                    setattr(self.config, key, value)
        with self._lock:
            return _json_response(200, self.config.public())


# --------------------------------------------------------------------------------------
# Running it


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass


class SandboxServer:
    """A sandbox running in a background thread; `shutdown()` stops it."""

    def __init__(self, sandbox: PayPalSandbox, httpd, thread: threading.Thread,
                 base_url: str):
        self.sandbox = sandbox
        self.httpd = httpd
        self.thread = thread
        self.base_url = base_url

    @property
    def port(self) -> int:
        return self.httpd.server_port

    def shutdown(self) -> None:
        self.sandbox.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> "SandboxServer":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def serve(host: str = "127.0.0.1", port: int = 0, log_requests: bool = False,
          **config) -> tuple[SandboxServer, str]:
    """Run a sandbox in a background thread (werkzeug, threaded). `config` takes the
    `SandboxConfig` fields. Returns the server (with `.shutdown()`) and its base URL."""
    sandbox = PayPalSandbox(SandboxConfig(**config))
    httpd = make_server(host, port, sandbox, threaded=True,
                        request_handler=None if log_requests else _QuietHandler)
    shown = f"[{host}]" if ":" in host else host
    base_url = f"http://{shown}:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, name="paypal-sandbox", daemon=True)
    thread.start()
    return SandboxServer(sandbox, httpd, thread, base_url), base_url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandboxes.paypal",
        description="Local PayPal Payouts sandbox (test/demo tool).")
    defaults = SandboxConfig()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client-id", default=defaults.client_id)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument("--polls-per-step", type=int, default=defaults.polls_per_step)
    parser.add_argument("--timeout-after-accept-seconds", type=float,
                        default=defaults.timeout_after_accept_seconds)
    parser.add_argument("--token-ttl-seconds", type=int, default=defaults.token_ttl_seconds)
    parser.add_argument("--webhook-url", default=None)
    args = parser.parse_args(argv)
    sandbox = PayPalSandbox(SandboxConfig(
        client_id=args.client_id, client_secret=args.client_secret,
        polls_per_step=args.polls_per_step,
        timeout_after_accept_seconds=args.timeout_after_accept_seconds,
        token_ttl_seconds=args.token_ttl_seconds, webhook_url=args.webhook_url))
    httpd = make_server(args.host, args.port, sandbox, threaded=True)
    tune_gc_for_bulk_work()  # it keeps every batch's items: a million objects and more
    print(f"PayPal sandbox on http://{args.host}:{httpd.server_port} "
          f"(client id {args.client_id!r})", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.close()
        httpd.server_close()


if __name__ == "__main__":
    main()
