"""The sandbox's WSGI application: PayPal's Payouts endpoints, batch progress and webhooks
(the package's docstring describes the protocol)."""
from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
import socket
import threading
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from typing import Any

import fastjsonschema
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandboxes.paypal.control import ControlAPI
from sandboxes.paypal.rules import (
    AFTER_ACCEPT_FAULTS, AMOUNT_VALUE, BEFORE_ACCEPT_FAULTS, DENIED_ERROR, DUPLICATE_WINDOW, EMAIL,
    INFORMATION_LINK, ITEM_EVENTS, MAX_ITEMS, OUTCOME_ERRORS, PAYPAL_CURRENCIES, PAYPAL_ID, PHONE,
    REQUEST_ID_WINDOW, UNCLAIMED_RETURNED_AFTER, format_amount, scripted_outcome)
from sandboxes.paypal.spec import issue_for, load_document, schema_error_details
from sandboxes.paypal.state import Batch, Item, ItemEvent, SandboxConfig
from sandboxes.paypal.wire import (
    WEBHOOK_CERT_PATH, DropConnection, DuplicateKey, base_of, debug_id, iso, json_default,
    json_response, new_id, parse_json, paypal_error, validation_error)
from settlement.payouts.webhook_signature import Signer


class PayPalSandbox(ControlAPI):
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
        self._batches: dict[str, Batch] = {}
        self._items: dict[str, Item] = {}
        self._by_sender_batch_id: dict[str, list[Batch]] = {}
        self._request_ids: dict[str, tuple[dt.datetime, int, dict]] = {}
        self._unclaimed: dict[str, Item] = {}
        self._faults: list[dict] = []
        self._applied_faults: list[dict] = []
        self._events: list[dict] = []  # {"event": dict or ItemEvent, "delivered", "error"}
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
                applied = {"kind": fault["kind"], "on": operation, "at": iso(self.now())}
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
        raise DropConnection("PayPal sandbox fault: connection dropped")

    # -- authentication ----------------------------------------------------------------

    def _on_token(self, request: Request) -> Response:
        auth = request.authorization
        if (auth is None or auth.type != "basic"
                or not secrets.compare_digest(str(auth.username or ""), self.config.client_id)
                or not secrets.compare_digest(str(auth.password or ""),
                                              self.config.client_secret)):
            resp = json_response(401, {"error": "invalid_client",
                                        "error_description": "Client Authentication failed"})
            resp.headers["WWW-Authenticate"] = 'Basic realm="PayPal sandbox"'
            return resp
        if request.form.get("grant_type") != "client_credentials":
            return json_response(400, {"error": "unsupported_grant_type",
                                        "error_description": "Grant Type is NULL or unsupported"})
        token = "A21AA" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = self.now() + dt.timedelta(
                seconds=int(self.config.token_ttl_seconds))
        return json_response(200, {
            "scope": "https://uri.paypal.com/services/payments/payouts "
                     "https://uri.paypal.com/payments/payouts",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-SANDBOX0000000000",
            "expires_in": int(self.config.token_ttl_seconds),
            "nonce": f"{iso(self.now())}{secrets.token_hex(8)}",
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
                pattern = {"EMAIL": EMAIL, "PHONE": PHONE, "PAYPAL_ID": PAYPAL_ID}[kind]
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
                match = AMOUNT_VALUE.fullmatch(value)
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
                                          "issue": issue_for(errors[0])}])
            with self._lock:
                stored = self._request_ids.get(request_id)
                if stored is not None and self.now() - stored[0] < REQUEST_ID_WINDOW:
                    return json_response(stored[1], copy.deepcopy(stored[2]))
        if request.mimetype != "application/json":
            return paypal_error(415, "UNSUPPORTED_MEDIA_TYPE",
                                "The server does not support the request payload's media type.")
        try:
            body = parse_json(request.get_data(cache=True))
        except DuplicateKey as exc:
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
        return json_response(201, answer)

    def _record_batch(self, body: dict, now: dt.datetime, request_id: str | None) -> Batch:
        header = body["sender_batch_header"]
        batch_id = new_id()
        while batch_id in self._batches:
            batch_id = new_id()
        batch = Batch(payout_batch_id=batch_id, sender_batch_id=header.get("sender_batch_id"),
                       request=body, time_created=now, request_id=request_id)
        header_type = header.get("recipient_type")
        for index, raw in enumerate(batch.request["items"]):
            kind = raw.get("recipient_type", header_type)
            item_id = new_id()
            while item_id in self._items:
                item_id = new_id()
            item = Item(payout_item_id=item_id, batch=batch, index=index, request=raw,
                         recipient_type=kind, outcome=scripted_outcome(raw["receiver"], kind))
            batch.items.append(item)
            self._items[item_id] = item
        self._batches[batch_id] = batch
        if batch.sender_batch_id is not None:
            self._by_sender_batch_id.setdefault(batch.sender_batch_id, []).append(batch)
        return batch

    # -- progress ----------------------------------------------------------------------

    def _poll_locked(self, batch: Batch, now: dt.datetime, base: str) -> list[dict | ItemEvent]:
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

    def _set_status_locked(self, item: Item, status: str, now: dt.datetime,
                           base: str) -> list[dict | ItemEvent]:
        item.status = status
        item.time_processed = now
        if status in ("SUCCESS", "UNCLAIMED", "RETURNED", "ONHOLD") and not item.transaction_id:
            item.transaction_id = new_id(17)
        if status in OUTCOME_ERRORS and (item.errors is None or status != "RETURNED"):
            name, message = OUTCOME_ERRORS[status]
            item.errors = {"name": name, "message": message, "debug_id": debug_id(),
                           "information_link": INFORMATION_LINK}
        if status == "UNCLAIMED":
            self._unclaimed[item.payout_item_id] = item
        else:
            self._unclaimed.pop(item.payout_item_id, None)
        if status in ITEM_EVENTS:
            event_type, summary = ITEM_EVENTS[status]
            return [ItemEvent(event_type, summary, copy.copy(item), base, now)]
        return []

    def _deny_locked(self, batch: Batch, now: dt.datetime, base: str) -> list[dict | ItemEvent]:
        batch.denied = True
        batch.time_completed = now
        name, message = DENIED_ERROR
        for item in batch.items:
            item.status = "FAILED"
            item.time_processed = now
            item.errors = {"name": name, "message": message, "debug_id": debug_id(),
                           "information_link": INFORMATION_LINK}
        return [self._event("PAYMENT.PAYOUTSBATCH.DENIED", "batch",
                            "Payouts batch was denied.", self._batch_header(batch), now)]

    def _expire_unclaimed_locked(self, now: dt.datetime, base: str) -> list[dict | ItemEvent]:
        events = []
        for item in list(self._unclaimed.values()):
            if item.time_processed is not None and \
                    now - item.time_processed >= UNCLAIMED_RETURNED_AFTER:
                events += self._set_status_locked(item, "RETURNED", now, base)
        return events

    def _event(self, event_type: str, resource_type: str, summary: str, resource: dict,
               now: dt.datetime) -> dict:
        return {"id": "WH-" + new_id(17), "event_version": "1.0", "create_time": iso(now),
                "resource_type": resource_type, "event_type": event_type,
                "summary": summary, "resource": resource}

    def _rendered(self, event: dict | ItemEvent) -> dict:
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
                body = json.dumps(event, default=json_default).encode("utf-8")
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
        base = base_of(event) or "http://127.0.0.1"
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
    def _echo_header(batch: Batch) -> dict:
        header = batch.request["sender_batch_header"]
        return {key: header[key] for key in
                ("sender_batch_id", "recipient_type", "email_subject", "email_message")
                if key in header}

    def _batch_header(self, batch: Batch) -> dict:
        out: dict[str, Any] = {
            "payout_batch_id": batch.payout_batch_id,
            "batch_status": batch.status,
            "time_created": iso(batch.time_created),
        }
        if batch.time_completed is not None:
            out["time_completed"] = iso(batch.time_completed)
            out["time_closed"] = iso(batch.time_completed)
        out["funding_source"] = "BALANCE"
        out["sender_batch_header"] = self._echo_header(batch)
        if batch.totals is None:
            currencies = {item.currency for item in batch.items}
            batch.totals = (currencies.pop() if len(currencies) == 1 else "", sum(
                (Decimal(item.request["amount"]["value"]) for item in batch.items), Decimal(0)))
        currency, total = batch.totals
        if currency:
            out["amount"] = {"currency": currency, "value": format_amount(total, currency)}
            out["fees"] = {"currency": currency, "value": format_amount(Decimal(0), currency)}
        return out

    def _render_item(self, item: Item, base: str, with_sender_batch_id: bool) -> dict:
        # A shallow copy: only top-level keys are added; the nested values are never changed.
        detail = dict(item.request)
        detail["recipient_type"] = item.recipient_type
        detail.setdefault("recipient_wallet", "PAYPAL")
        out: dict[str, Any] = {"payout_item_id": item.payout_item_id}
        if item.transaction_id:
            out["transaction_id"] = item.transaction_id
        out["transaction_status"] = item.status
        out["payout_item_fee"] = {"currency": item.currency,
                                  "value": format_amount(Decimal(0), item.currency)}
        out["payout_batch_id"] = item.batch.payout_batch_id
        if with_sender_batch_id and item.batch.sender_batch_id is not None:
            out["sender_batch_id"] = item.batch.sender_batch_id
        out["payout_item"] = detail
        if item.time_processed is not None:
            out["time_processed"] = iso(item.time_processed)
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
                            "issue": issue_for(errors[0]) if errors else
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
        return json_response(200, body)

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
        return json_response(200, body)

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
                answer = json_response(200, self._render_item(item, base, True))
        self._deliver(events)
        return answer
