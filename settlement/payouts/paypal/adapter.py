"""PayPal Payouts (batch) adapter: the payout interface over PayPal's REST API.

It speaks HTTP with the standard library only (``http.client``), every call with an explicit
timeout, and never decides about money: it reports what PayPal says (see ``base.py``).

Protocol, as PayPal documents it (``settlement/payouts/specs/paypal/``):

* OAuth2 client credentials (``POST /v1/oauth2/token``, HTTP basic auth). The token is
  cached until shortly before it expires, and fetched again when an API call answers 401.
* ``POST /v1/payments/payouts`` creates a batch of at most 15,000 items. Its
  ``sender_batch_id`` is our ``BatchContext.idempotency_key``. PayPal refuses a
  ``sender_batch_id`` used within the last 30 days (400 ``USER_BUSINESS_ERROR``, detail field
  ``SENDER_BATCH_ID``) with a link to the original batch, and a 5xx may be retried with the
  same ``sender_batch_id``: PayPal pays a ``sender_batch_id`` at most once within 30 days.
  There is no look-up by ``sender_batch_id``; the duplicate answer's link is the only way to
  find a batch whose first answer was lost.
* ``GET /v1/payments/payouts/{payout_batch_id}`` (paged) reports the batch and its items.
  Items are matched back to our lines by ``sender_item_id`` (our ``PayoutLine.reference``);
  PayPal does not de-duplicate items by ``sender_item_id``, so references must be unique in
  a batch (``submit`` checks).

What the adapter answers:

* ``submit``: 201 -> SUBMITTED (or REFUSED when the batch is already DENIED); duplicate
  ``sender_batch_id`` -> SUBMITTED with the original batch's id; 400 ``VALIDATION_ERROR``
  (or any other 4xx refusal) -> REFUSED, nothing was paid; 5xx/429 -> retried a few times
  with the same ``sender_batch_id``, then UNKNOWN; a timeout or dropped connection once the
  request may have been sent -> UNKNOWN (``submit`` never re-sends after that: ``find`` does,
  deliberately, see its docstring).
* ``poll``: item outcomes; transport trouble is reported in ``error`` with ``done=False``
  (polling again is always safe) rather than raised.
"""
from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from settlement.money import format_amount
from settlement.payouts.base import (
    FAILED,
    PENDING,
    REFUSED,
    SUBMITTED,
    SUCCEEDED,
    UNCLAIMED,
    UNKNOWN,
    BatchContext,
    BatchResult,
    ItemOutcome,
    PayoutLine,
)

MAX_ITEMS = 15_000
MAX_PAGE_SIZE = 1_000  # the document's maximum for page_size
PAYOUTS_PATH = "/v1/payments/payouts"
TOKEN_PATH = "/v1/oauth2/token"

# PayPal transaction_status -> our item status.
ITEM_STATUS: dict[str, str] = {
    "SUCCESS": SUCCEEDED,
    "FAILED": FAILED,
    "RETURNED": FAILED,
    "BLOCKED": FAILED,
    "REFUNDED": FAILED,
    "REVERSED": FAILED,
    "DENIED": FAILED,
    "CANCELED": FAILED,  # an unclaimed item cancelled by the sender: the money came back
    "UNCLAIMED": UNCLAIMED,
    "PENDING": PENDING,
    "ONHOLD": PENDING,
    "NEW": PENDING,
}
# Batch statuses after which PayPal changes nothing at batch level.
FINAL_BATCH_STATUSES = frozenset({"SUCCESS", "DENIED", "CANCELED"})

# Webhook item event -> the transaction_status it stands for (when the resource lacks one).
WEBHOOK_ITEM_EVENTS: dict[str, str] = {
    "PAYMENT.PAYOUTS-ITEM.SUCCEEDED": "SUCCESS",
    "PAYMENT.PAYOUTS-ITEM.FAILED": "FAILED",
    "PAYMENT.PAYOUTS-ITEM.UNCLAIMED": "UNCLAIMED",
    "PAYMENT.PAYOUTS-ITEM.RETURNED": "RETURNED",
    "PAYMENT.PAYOUTS-ITEM.HELD": "ONHOLD",
    "PAYMENT.PAYOUTS-ITEM.BLOCKED": "BLOCKED",
    "PAYMENT.PAYOUTS-ITEM.REFUNDED": "REFUNDED",
    "PAYMENT.PAYOUTS-ITEM.REVERSED": "REVERSED",
    "PAYMENT.PAYOUTS-ITEM.DENIED": "DENIED",
    "PAYMENT.PAYOUTS-ITEM.CANCELED": "CANCELED",
}
WEBHOOK_ITEM_PREFIX = "PAYMENT.PAYOUTS-ITEM."

_BATCH_HREF = re.compile(r"/v1/payments/payouts/([A-Za-z0-9_-]{1,64})/?\Z")
_ITEM_FIELD = re.compile(r"items\[(\d+)\]")


# --------------------------------------------------------------------------------------
# Transport


class _NotSent(Exception):
    """The request certainly did not reach PayPal (connection refused, no token, ...)."""


class _Lost(Exception):
    """The request may have reached PayPal, but no answer came back (timeout, reset)."""


@dataclass
class _Answer:
    status: int
    body: Any  # parsed JSON, or None when the body is empty or not JSON
    raw: bytes


def _strict_json(raw: bytes) -> Any:
    """JSON with numbers as Decimal (no float ever touches an amount); None if not JSON."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _paypal_error_text(answer: _Answer) -> str:
    """`NAME: message: field: issue (value); ...` from a PayPal error body."""
    body = answer.body
    if not isinstance(body, dict):
        snippet = answer.raw[:200].decode("utf-8", "replace")
        return f"HTTP {answer.status}" + (f": {snippet}" if snippet else "")
    name = body.get("name") or body.get("error") or f"HTTP {answer.status}"
    text = f"HTTP {answer.status} {name}"
    message = body.get("message") or body.get("error_description")
    if message:
        text += f": {message}"
    parts = []
    for detail in body.get("details") or []:
        if not isinstance(detail, dict):
            continue
        issue = detail.get("issue") or detail.get("description") or "?"
        part = f"{detail.get('field') or '?'}: {issue}"
        if detail.get("value") is not None:
            part += f" ({str(detail['value'])[:80]!r})"
        parts.append(part)
    if parts:
        text += " - " + "; ".join(parts)
    if body.get("debug_id"):
        text += f" [debug_id {body['debug_id']}]"
    return text


def _page_count(body: dict, expected_items: int, page_size: int) -> int:
    """How many pages of a batch to read: PayPal's ``total_pages`` (asked for with
    ``total_required=true``; ``total_page`` accepted too), else as many as our lines fill.
    Never more than our lines could fill (plus one, for items we do not know of): a batch
    of 15,000 items is 15 pages of 1,000, never 15,000 requests."""
    most = max(1, -(-expected_items // page_size)) + 1
    for name in ("total_pages", "total_page"):
        value = body.get(name)
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return max(1, min(int(value), most))
    return most - 1


def _batch_ids_in(links: Any) -> list[tuple[str, str | None]]:
    """(batch id, rel) of every link to a payout batch in a list of HATEOAS links."""
    found = []
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            continue
        match = _BATCH_HREF.search(urllib.parse.urlsplit(link["href"]).path)
        if match:
            found.append((match.group(1), link.get("rel")))
    return found


def original_batch_id(body: Any) -> str | None:
    """The original batch's id in PayPal's answer to a reused ``sender_batch_id``.

    PayPal puts the link inside the SENDER_BATCH_ID detail (``details[].link``, a list of
    links, which the document's ``error_details`` schema does not list) and leaves the
    top-level ``links`` empty; the top level is read too, should PayPal ever move it. A
    ``self`` link wins over any other rel."""
    if not isinstance(body, dict):
        return None
    candidates: list[tuple[str, str | None]] = []
    for detail in body.get("details") or []:
        if isinstance(detail, dict):
            candidates += _batch_ids_in(detail.get("link"))
            candidates += _batch_ids_in(detail.get("links"))
    candidates += _batch_ids_in(body.get("links"))
    for batch_id, rel in candidates:
        if rel == "self":
            return batch_id
    return candidates[0][0] if candidates else None


# --------------------------------------------------------------------------------------
# Webhooks


@dataclass(frozen=True)
class WebhookItem:
    """What a PAYMENT.PAYOUTS-ITEM.* event says about one item."""

    event_id: str | None
    event_type: str
    sender_item_id: str | None
    status: str  # SUCCEEDED | FAILED | PENDING | UNCLAIMED
    provider_status: str  # PayPal's transaction_status
    payout_item_id: str | None
    payout_batch_id: str | None
    sender_batch_id: str | None
    transaction_id: str | None
    reason: str | None  # for FAILED

    def outcome(self, item_id: int) -> ItemOutcome:
        """The item outcome, once the caller has mapped `sender_item_id` to its item."""
        return ItemOutcome(item_id=item_id, status=self.status,
                           provider_item_id=self.payout_item_id,
                           provider_status=self.provider_status, reason=self.reason)


def _item_reason(provider_status: str, errors: Any) -> str:
    text = f"PayPal {provider_status}"
    if isinstance(errors, dict):
        name, message = errors.get("name"), errors.get("message")
        if name:
            text += f": {name}"
        if message:
            text += f" ({message})"
    return text


def _map_item(provider_status: str, errors: Any) -> tuple[str, str | None]:
    """PayPal transaction_status -> (our status, reason for FAILED). Unknown words stay
    PENDING: no money moves on a status we do not understand."""
    status = ITEM_STATUS.get(provider_status.upper(), PENDING)
    return status, (_item_reason(provider_status, errors) if status == FAILED else None)


def parse_webhook(body: bytes) -> WebhookItem | None:
    """Read a PayPal webhook event. Returns the item information for
    ``PAYMENT.PAYOUTS-ITEM.*`` events and None for any other event (batch events, ...);
    raises ValueError for a body that is not a PayPal event.

    Out of scope: verifying PayPal's signature (the ``PAYPAL-TRANSMISSION-*`` headers, via
    PayPal's verify-webhook-signature API or its certificate). Until the caller has done
    that, the event is untrusted input: use it only as a hint to ``poll`` the batch, and move
    money on what ``poll`` reports, never on the webhook body alone.
    """
    event = _strict_json(body)
    if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
        raise ValueError("not a PayPal webhook event (JSON object with event_type expected)")
    event_type = event["event_type"]
    if not event_type.upper().startswith(WEBHOOK_ITEM_PREFIX):
        return None
    resource = event.get("resource")
    if not isinstance(resource, dict):
        raise ValueError(f"{event_type} event without a resource")
    provider_status = resource.get("transaction_status")
    if not isinstance(provider_status, str) or not provider_status:
        provider_status = WEBHOOK_ITEM_EVENTS.get(event_type.upper(), "PENDING")
    status, reason = _map_item(provider_status, resource.get("errors"))
    item = resource.get("payout_item")
    item = item if isinstance(item, dict) else {}

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    return WebhookItem(
        event_id=text(event.get("id")), event_type=event_type,
        sender_item_id=text(item.get("sender_item_id")), status=status,
        provider_status=provider_status, payout_item_id=text(resource.get("payout_item_id")),
        payout_batch_id=text(resource.get("payout_batch_id")),
        sender_batch_id=text(resource.get("sender_batch_id")),
        transaction_id=text(resource.get("transaction_id")), reason=reason)


# --------------------------------------------------------------------------------------
# The adapter


class PayPalAdapter:
    """Payouts through PayPal's Payouts API (see the module docstring).

    `timeout` bounds every connect and every read (seconds); `retries` is how many times a
    5xx/429 (or a request that certainly was not sent) is retried, with `backoff * 2**n`
    seconds between attempts. The adapter is safe to share between threads.
    """

    method = "paypal"

    def __init__(self, base_url: str, client_id: str, client_secret: str, *,
                 timeout: float = 10.0, retries: int = 3, backoff: float = 0.5,
                 page_size: int = MAX_PAGE_SIZE,
                 email_subject: str = "You have a cash back payout",
                 email_message: str = "Your cash back has been paid to your PayPal account.",
                 note: str = "Cash back payout of {payout_date}",
                 sleep: Callable[[float], None] = time.sleep):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"PayPal base URL must be http(s)://host[:port]: {base_url!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.base_url = base_url.rstrip("/")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._ssl = ssl.create_default_context() if parsed.scheme == "https" else None
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.page_size = int(page_size)
        self.email_subject = email_subject
        self.email_message = email_message
        self.note = note
        self._sleep = sleep
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_valid_until = 0.0  # time.monotonic()

    @classmethod
    def from_settings(cls, settings=None, **overrides) -> "PayPalAdapter":
        """From `Settings` (SETTLE_PAYPAL_BASE_URL, _CLIENT_ID, _CLIENT_SECRET,
        _TIMEOUT_SECONDS)."""
        if settings is None:
            from settlement.config import get_settings
            settings = get_settings()
        overrides.setdefault("timeout", settings.paypal_timeout_seconds)
        return cls(settings.paypal_base_url, settings.paypal_client_id,
                   settings.paypal_client_secret, **overrides)

    parse_webhook = staticmethod(parse_webhook)

    # -- HTTP --------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> _Answer:
        """One HTTP exchange. Raises _NotSent when the connection could not be made (so
        nothing was sent), _Lost when anything fails after that."""
        if self._scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            try:
                conn.connect()
            except (OSError, http.client.HTTPException) as exc:
                raise _NotSent(f"cannot connect to {self.base_url}: {_describe(exc)}") from exc
            try:
                conn.request(method, self._prefix + path, body=body,
                             headers={"Accept": "application/json", **(headers or {})})
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise _Lost(f"{method} {path}: no answer ({_describe(exc)})") from exc
            return _Answer(response.status, _strict_json(raw), raw)
        finally:
            conn.close()

    def _fetch_token(self) -> str:
        """A new access token (client credentials), retried like any safe request."""
        pair = f"{self.client_id}:{self.client_secret}".encode("utf-8")
        headers = {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii"),
                   "Content-Type": "application/x-www-form-urlencoded"}
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                self._pause(attempt)
            try:
                answer = self._request("POST", TOKEN_PATH, b"grant_type=client_credentials",
                                       headers)
            except (_NotSent, _Lost) as exc:  # the token call itself moves no money
                last = str(exc)
                continue
            if answer.status == 200 and isinstance(answer.body, dict) and \
                    isinstance(answer.body.get("access_token"), str):
                token = answer.body["access_token"]
                try:
                    lifetime = float(answer.body.get("expires_in") or 0)
                except (TypeError, ValueError):
                    lifetime = 0.0
                # Refresh shortly before expiry: 10% of the lifetime, at most 5 minutes.
                margin = min(300.0, lifetime / 10)
                self._token = token
                self._token_valid_until = time.monotonic() + max(0.0, lifetime - margin)
                return token
            last = "token request refused: " + _paypal_error_text(answer)
            if answer.status < 500 and answer.status != 429:
                break  # wrong credentials do not get better by asking again
        raise _NotSent(f"no PayPal access token ({last})")

    def _bearer(self, renew: bool = False) -> str:
        with self._token_lock:
            if renew or self._token is None or time.monotonic() >= self._token_valid_until:
                self._token = None
                return self._fetch_token()
            return self._token

    def _call(self, method: str, path: str, payload: Any = None) -> _Answer:
        """An authorised API call; a 401 renews the token and tries once more (a 401 is
        answered before PayPal records anything, so repeating it is safe)."""
        data = None
        headers: dict[str, str] = {}
        if payload is not None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        token = self._bearer()
        answer = self._request(method, path, data, {**headers, "Authorization": f"Bearer {token}"})
        if answer.status == 401:
            token = self._bearer(renew=True)
            answer = self._request(method, path, data,
                                   {**headers, "Authorization": f"Bearer {token}"})
        return answer

    def _pause(self, attempt: int) -> None:
        if self.backoff > 0:
            self._sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))

    def _get(self, path: str) -> _Answer:
        """A GET, retried on 5xx/429 and on transport failures (reading is always safe).
        Raises _NotSent/_Lost when every attempt failed in transport."""
        answer: _Answer | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._pause(attempt)
            try:
                answer = self._call("GET", path)
            except (_NotSent, _Lost):
                if attempt == self.retries:
                    raise
                continue
            if answer.status < 500 and answer.status != 429:
                return answer
        assert answer is not None
        return answer

    # -- building the request ----------------------------------------------------------

    def _payload(self, ctx: BatchContext, lines: list[PayoutLine]) -> dict:
        if not lines:
            raise ValueError("a PayPal batch needs at least one line")
        if len(lines) > MAX_ITEMS:
            raise ValueError(f"a PayPal batch holds at most {MAX_ITEMS} items, "
                             f"got {len(lines)}")
        seen: set[str] = set()
        for line in lines:
            if not line.destination:
                raise ValueError(f"item {line.item_id} has no PayPal email")
            if line.reference in seen:
                # PayPal would pay both; and poll could not tell them apart.
                raise ValueError(f"reference {line.reference!r} appears twice in the batch")
            seen.add(line.reference)
        note = self.note.format(payout_date=ctx.payout_date.isoformat(), tenant=ctx.tenant,
                                run_id=ctx.run_id)
        return {
            "sender_batch_header": {
                "sender_batch_id": ctx.idempotency_key,
                "email_subject": self.email_subject,
                "email_message": self.email_message,
                "recipient_type": "EMAIL",
            },
            "items": [{
                "recipient_type": "EMAIL",
                "amount": {"value": format_amount(line.amount, line.digits),
                           "currency": line.currency},
                "receiver": line.destination,
                "sender_item_id": line.reference,
                "note": note,
            } for line in lines],
        }

    # -- the interface -----------------------------------------------------------------

    def submit(self, ctx: BatchContext, lines: list[PayoutLine]) -> BatchResult:
        """Create the batch with ``sender_batch_id = ctx.idempotency_key``.

        Safe to call again with the same ctx: PayPal answers the second one with the
        duplicate error and its link, and this answers SUBMITTED with the original id.
        5xx answers are retried with the same ``sender_batch_id`` (PayPal documents this as
        safe); once a request may have reached PayPal without an answer coming back the
        result is UNKNOWN and ``find`` takes over.
        """
        return self._post_batch(ctx, lines)

    def find(self, ctx: BatchContext, lines: list[PayoutLine]) -> BatchResult:
        """Resolve a batch whose submission outcome is UNKNOWN, by POSTing it again with
        the SAME ``sender_batch_id``.

        Why re-sending is safe here, and the only way: PayPal has no look-up by
        ``sender_batch_id``, but it refuses a ``sender_batch_id`` used within the last 30
        days (400 ``USER_BUSINESS_ERROR``, field ``SENDER_BATCH_ID``) and links the original
        batch; it pays a ``sender_batch_id`` at most once in that window. So the POST is a
        question with a side effect that can happen at most once:

        * 201: PayPal never had the batch (the lost request never arrived or was refused);
          it has it now -> SUBMITTED with the new id. (So unlike base.py's general wording,
          this adapter never answers "REFUSED, never got it": it submits in the same step.)
        * the duplicate error: PayPal has the original -> follow the link, SUBMITTED with
          the ORIGINAL batch's id (REFUSED if that batch was DENIED).
        * 400 ``VALIDATION_ERROR`` / other 4xx: PayPal refuses this content, so the earlier
          identical request cannot have been accepted either -> REFUSED, nothing paid.
        * 5xx (after the retries), a timeout or a dropped connection -> UNKNOWN again; ask
          later.

        Precondition: call it within 30 days of the first submission. After that PayPal
        forgets the ``sender_batch_id`` and a POST would create a second batch. The context
        does not carry the first submission time, so the caller must enforce this.
        """
        return self._post_batch(ctx, lines)

    def poll(self, ctx: BatchContext, provider_batch_id: str,
             lines: list[PayoutLine]) -> BatchResult:
        """Read the batch (every page) and report each line's item by its reference.

        While the batch is PENDING or PROCESSING only its header is read (one small request
        instead of a page per 1,000 items on every poll) and no outcome is reported yet.

        ``done`` when the batch status is final (SUCCESS, DENIED, CANCELED), every line was
        found and no item is PENDING or UNCLAIMED. A DENIED batch answers REFUSED (nothing
        was paid), anything else SUBMITTED. Transport trouble or an unexpected answer is
        reported in ``error`` with ``done=False`` and whatever outcomes were read already.
        """
        status, problem = self._batch_status(provider_batch_id)
        if problem is not None or status in ("PENDING", "PROCESSING"):
            return BatchResult(state=SUBMITTED, provider_batch_id=provider_batch_id,
                               outcomes=[], error=problem, done=False)
        by_ref = {line.reference: line for line in lines}
        found: dict[str, ItemOutcome] = {}
        problems: list[str] = []
        batch_status: str | None = None
        batch_id = urllib.parse.quote(provider_batch_id, safe="")
        page = 1
        while True:
            query = urllib.parse.urlencode({"page_size": self.page_size, "page": page,
                                            "total_required": "true"})
            try:
                answer = self._get(f"{PAYOUTS_PATH}/{batch_id}?{query}")
            except (_NotSent, _Lost) as exc:
                problems.append(f"page {page}: {exc}")
                break
            if answer.status != 200 or not isinstance(answer.body, dict):
                problems.append(f"page {page}: {_paypal_error_text(answer)}")
                break
            body = answer.body
            header = body.get("batch_header") if isinstance(body.get("batch_header"),
                                                             dict) else {}
            if isinstance(header.get("batch_status"), str):
                batch_status = header["batch_status"]
            items = body.get("items") if isinstance(body.get("items"), list) else []
            for item in items:
                self._read_item(item, by_ref, found, problems)
            if page == 1:
                last_page = _page_count(body, len(lines), self.page_size)
            if page >= last_page or len(items) < self.page_size:
                break
            page += 1

        missing = [line.reference for line in lines if line.reference not in found]
        if missing and not problems:
            problems.append(f"{len(missing)} line(s) not in the PayPal batch, e.g. "
                            f"{missing[0]!r}")
        outcomes = [found[line.reference] for line in lines if line.reference in found]
        done = (not problems and batch_status in FINAL_BATCH_STATUSES
                and all(o.status in (SUCCEEDED, FAILED) for o in outcomes))
        state = REFUSED if batch_status == "DENIED" else SUBMITTED
        return BatchResult(state=state, provider_batch_id=provider_batch_id,
                           outcomes=outcomes, error="; ".join(problems) or None, done=done)

    def _batch_status(self, provider_batch_id: str) -> tuple[str | None, str | None]:
        """(the batch header's status, None), or (None, what went wrong)."""
        batch_id = urllib.parse.quote(provider_batch_id, safe="")
        try:
            answer = self._get(f"{PAYOUTS_PATH}/{batch_id}?fields=batch_header")
        except (_NotSent, _Lost) as exc:
            return None, f"header: {exc}"
        if answer.status != 200 or not isinstance(answer.body, dict):
            return None, f"header: {_paypal_error_text(answer)}"
        header = answer.body.get("batch_header")
        status = header.get("batch_status") if isinstance(header, dict) else None
        return (status if isinstance(status, str) else None), None

    @staticmethod
    def _read_item(item: Any, by_ref: dict[str, PayoutLine], found: dict[str, ItemOutcome],
                   problems: list[str]) -> None:
        if not isinstance(item, dict):
            problems.append("an item that is not an object")
            return
        detail = item.get("payout_item") if isinstance(item.get("payout_item"), dict) else {}
        ref = detail.get("sender_item_id")
        line = by_ref.get(ref) if isinstance(ref, str) else None
        if line is None:
            problems.append(f"PayPal item {item.get('payout_item_id')!r} has unknown "
                            f"sender_item_id {ref!r}")
            return
        if ref in found:
            problems.append(f"sender_item_id {ref!r} appears twice in the PayPal batch")
            return
        provider_status = item.get("transaction_status")
        if not isinstance(provider_status, str) or not provider_status:
            provider_status = "PENDING"
        status, reason = _map_item(provider_status, item.get("errors"))
        payout_item_id = item.get("payout_item_id")
        found[ref] = ItemOutcome(
            item_id=line.item_id, status=status,
            provider_item_id=payout_item_id if isinstance(payout_item_id, str) else None,
            provider_status=provider_status, reason=reason)

    # -- submission ----------------------------------------------------------------------

    def _post_batch(self, ctx: BatchContext, lines: list[PayoutLine]) -> BatchResult:
        payload = self._payload(ctx, lines)
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._pause(attempt)
            try:
                answer = self._call("POST", PAYOUTS_PATH, payload)
            except _NotSent as exc:  # certainly not sent: trying again is harmless
                last = f"not sent: {exc}"
                continue
            except _Lost as exc:
                return BatchResult(state=UNKNOWN, error=f"no answer after sending, PayPal may "
                                                        f"have the batch: {exc}")
            if answer.status >= 500 or answer.status == 429:
                last = _paypal_error_text(answer)  # retry with the same sender_batch_id
                continue
            return self._interpret(ctx, lines, answer)
        return BatchResult(state=UNKNOWN,
                           error=f"gave up after {self.retries + 1} attempt(s): {last}")

    def _interpret(self, ctx: BatchContext, lines: list[PayoutLine],
                   answer: _Answer) -> BatchResult:
        body = answer.body if isinstance(answer.body, dict) else {}
        if 200 <= answer.status < 300:
            header = body.get("batch_header") if isinstance(body.get("batch_header"),
                                                             dict) else {}
            batch_id = header.get("payout_batch_id")
            if not isinstance(batch_id, str) or not batch_id:
                return BatchResult(state=UNKNOWN, error=f"HTTP {answer.status} without a "
                                                        f"payout_batch_id")
            if header.get("batch_status") == "DENIED":
                return self._denied(ctx, batch_id, lines)
            return BatchResult(state=SUBMITTED, provider_batch_id=batch_id)
        if answer.status == 400 and self._is_duplicate(body):
            return self._original(ctx, lines, answer)
        if answer.status == 401:
            # Refused before anything was recorded, but not a verdict on the batch.
            return BatchResult(state=UNKNOWN, error="not accepted, authentication failed: "
                                                    + _paypal_error_text(answer))
        if 400 <= answer.status < 500:
            return self._refused(lines, answer)
        return BatchResult(state=UNKNOWN, error="unexpected answer: "
                                                + _paypal_error_text(answer))

    @staticmethod
    def _is_duplicate(body: dict) -> bool:
        if body.get("name") != "USER_BUSINESS_ERROR":
            return False
        for detail in body.get("details") or []:
            if isinstance(detail, dict) and (
                    str(detail.get("field", "")).upper() == "SENDER_BATCH_ID"
                    or "sender_batch_id" in str(detail.get("issue", "")).lower()):
                return True
        return False

    def _original(self, ctx: BatchContext, lines: list[PayoutLine],
                  answer: _Answer) -> BatchResult:
        """The duplicate-sender_batch_id answer: the original batch is linked from the
        SENDER_BATCH_ID detail (``details[].link``; the top-level ``links`` is empty, see
        ``specs/paypal/README.md``). Only the id is taken from the link; the batch is read
        from our own base URL (the bearer token is never sent to a host named in an
        answer)."""
        batch_id = original_batch_id(answer.body)
        if batch_id is None:
            return BatchResult(state=UNKNOWN, error="PayPal has a batch with this "
                               "sender_batch_id but named no link to it: "
                               + _paypal_error_text(answer))
        try:
            original = self._get(f"{PAYOUTS_PATH}/{batch_id}?fields=batch_header")
        except (_NotSent, _Lost) as exc:
            return BatchResult(state=SUBMITTED, provider_batch_id=batch_id,
                               error=f"original batch not read: {exc}")
        if original.status != 200 or not isinstance(original.body, dict):
            return BatchResult(state=SUBMITTED, provider_batch_id=batch_id,
                               error="original batch not read: "
                                     + _paypal_error_text(original))
        header = original.body.get("batch_header")
        header = header if isinstance(header, dict) else {}
        sender_header = header.get("sender_batch_header")
        sender_id = sender_header.get("sender_batch_id") if isinstance(sender_header,
                                                                       dict) else None
        if sender_id is not None and sender_id != ctx.idempotency_key:
            return BatchResult(state=UNKNOWN, error=f"PayPal linked batch {batch_id}, whose "
                               f"sender_batch_id is {sender_id!r}, not "
                               f"{ctx.idempotency_key!r}")
        if header.get("batch_status") == "DENIED":
            return self._denied(ctx, batch_id, lines)
        return BatchResult(state=SUBMITTED, provider_batch_id=batch_id)

    def _denied(self, ctx: BatchContext, batch_id: str, lines: list[PayoutLine]) -> BatchResult:
        """A DENIED batch: nothing paid, every item FAILED (with PayPal's item reasons when
        the batch can be read)."""
        polled = self.poll(ctx, batch_id, lines)
        if polled.state == REFUSED and polled.error is None and \
                len(polled.outcomes) == len(lines):
            polled.outcomes = [o if o.status == FAILED else ItemOutcome(
                o.item_id, FAILED, o.provider_item_id, o.provider_status,
                f"PayPal DENIED the batch ({o.provider_status})") for o in polled.outcomes]
            polled.error = "PayPal DENIED the batch"
            polled.done = True
            return polled
        return BatchResult(
            state=REFUSED, provider_batch_id=batch_id, done=True,
            error="PayPal DENIED the batch",
            outcomes=[ItemOutcome(line.item_id, FAILED, provider_status="DENIED",
                                  reason="PayPal DENIED the batch") for line in lines])

    @staticmethod
    def _refused(lines: list[PayoutLine], answer: _Answer) -> BatchResult:
        """A 4xx refusal (VALIDATION_ERROR, ...): PayPal recorded nothing, paid nothing.
        Items named in the details get their own issue as reason, the others say the
        batch was refused because of other items."""
        error = _paypal_error_text(answer)
        name = answer.body.get("name") if isinstance(answer.body, dict) else None
        name = name or f"HTTP {answer.status}"
        own: dict[int, list[str]] = {}
        details = answer.body.get("details") if isinstance(answer.body, dict) else None
        for detail in details or []:
            if not isinstance(detail, dict):
                continue
            match = _ITEM_FIELD.match(str(detail.get("field", "")))
            if match:
                own.setdefault(int(match.group(1)), []).append(
                    f"{detail.get('field')}: {detail.get('issue')}")
        outcomes = []
        for index, line in enumerate(lines):
            if index in own:
                reason = f"PayPal refused the batch ({name}): " + "; ".join(own[index])
            else:
                reason = (f"PayPal refused the whole batch ({name}) because of other items; "
                          "not paid")
            outcomes.append(ItemOutcome(line.item_id, FAILED, reason=reason))
        return BatchResult(state=REFUSED, error=error, outcomes=outcomes, done=True)
