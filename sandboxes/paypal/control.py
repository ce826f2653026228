"""The sandbox's own control API under ``/_sandbox`` (not PayPal's; no authentication):
faults, reset, batches, clock, events, later item changes, settings. The sandbox refuses to
listen beyond loopback without an explicit flag (server.py) because of it."""
from __future__ import annotations

import copy
import datetime as dt
import json

from werkzeug.wrappers import Request, Response

from sandboxes.paypal.rules import AFTER_ACCEPT_FAULTS, BEFORE_ACCEPT_FAULTS, FAULT_OPERATIONS
from sandboxes.paypal.state import SandboxConfig
from sandboxes.paypal.wire import iso, json_response


class ControlAPI:
    """The ``/_sandbox`` endpoints of `PayPalSandbox` (mixed into it: they read and change its
    state under its lock)."""

    @staticmethod
    def _control_body(request: Request) -> tuple[dict | None, Response | None]:
        data = request.get_data(cache=True)
        if not data.strip():
            return {}, None
        try:
            body = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None, json_response(400, {"error": "body is not JSON"})
        if not isinstance(body, dict):
            return None, json_response(400, {"error": "body must be a JSON object"})
        return body, None

    def _on_sandbox_faults(self, request: Request) -> Response:
        if request.method == "POST":
            body, error = self._control_body(request)
            if error is not None:
                return error
            queued = []
            for entry in body.get("next") or []:
                if not isinstance(entry, dict):
                    return json_response(400, {"error": "each fault must be an object"})
                kind = entry.get("kind")
                on = entry.get("on", "create")
                count = entry.get("count", 1)
                seconds = entry.get("seconds")
                if kind not in BEFORE_ACCEPT_FAULTS | AFTER_ACCEPT_FAULTS:
                    return json_response(400, {"error": f"unknown fault kind {kind!r}"})
                if on not in FAULT_OPERATIONS:
                    return json_response(400, {"error": f"unknown operation {on!r}"})
                if kind in AFTER_ACCEPT_FAULTS and on != "create":
                    return json_response(400, {"error": f"{kind} applies to 'create' only"})
                if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                    return json_response(400, {"error": "count must be a positive integer"})
                if seconds is not None and (not isinstance(seconds, (int, float))
                                            or isinstance(seconds, bool) or seconds < 0):
                    return json_response(400, {"error": "seconds must be a number >= 0"})
                queued.append({"kind": kind, "count": count, "on": on, "seconds": seconds})
            with self._lock:
                self._faults.extend(queued)
        with self._lock:
            return json_response(200, {"pending": copy.deepcopy(self._faults),
                                        "applied": copy.deepcopy(self._applied_faults)})

    def _on_sandbox_reset(self, request: Request) -> Response:
        self.reset()
        return json_response(200, {"reset": True, "now": iso(self.now())})

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
                    "time_created": iso(batch.time_created),
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
                        "time_processed": iso(item.time_processed),
                    } for item in batch.items],
                })
            body = {"now": iso(self.now()), "batches": batches}
        self._deliver(events)
        return json_response(200, body)

    def _on_sandbox_advance(self, request: Request) -> Response:
        body, error = self._control_body(request)
        if error is not None:
            return error
        try:
            delta = dt.timedelta(days=float(body.get("days", 0)),
                                 seconds=float(body.get("seconds", 0)))
        except (TypeError, ValueError):
            return json_response(400, {"error": "days and seconds must be numbers"})
        if delta < dt.timedelta(0):
            return json_response(400, {"error": "the sandbox clock only moves forward"})
        base = request.host_url.rstrip("/")
        with self._lock:
            self._clock_offset += delta
            now = self.now()
            events = self._expire_unclaimed_locked(now, base)
        self._deliver(events)
        return json_response(200, {"now": iso(now)})

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
                return json_response(404, {"error": f"no item {item_id}"})
            if status not in allowed.get(item.status, ()):
                return json_response(409, {"error": f"an item {item.status} cannot become "
                                                     f"{status!r}"})
            events = self._set_status_locked(item, status, self.now(), base)
        self._deliver(events)
        return json_response(200, {"payout_item_id": item_id, "transaction_status": status})

    def _on_sandbox_events(self, request: Request) -> Response:
        with self._lock:
            for record in self._events:  # rendered once: an event's id never changes
                record["event"] = self._rendered(record["event"])
            return json_response(200, {"events": copy.deepcopy(self._events)})

    def _on_sandbox_config(self, request: Request) -> Response:
        if request.method == "POST":
            body, error = self._control_body(request)
            if error is not None:
                return error
            unknown = set(body) - set(SandboxConfig.RUNTIME_KEYS)
            if unknown:
                return json_response(400, {"error": f"not settable: {sorted(unknown)}"})
            with self._lock:
                for key, value in body.items():
                    setattr(self.config, key, value)
        with self._lock:
            return json_response(200, self.config.public())
