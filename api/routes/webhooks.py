"""PayPal's webhook for payout item events.

PayPal calls it without our API keys. What it sends is held to PayPal's own bounds before
anything else: a body of at most `webhook_max_bytes` (refused from Content-Length, before
reading), read within `webhook_read_timeout_seconds` (a client trickling its body cannot
hold a worker's thread), and PayPal's signature for our webhook id
(settlement/payouts/webhook_signature.py); a refused event enqueues nothing. Even a
genuine event is only a hint: it makes us poll the item's batch now, and money moves on
what the poll reports, never on the event's body.
"""
from __future__ import annotations

import logging
import re
import socket
import threading
import time

from flask import current_app, request
from flask_smorest import Blueprint
from sqlalchemy import select

from api.database import db
from api.errors import Problem
from settlement import jsonsafe
from settlement.db import set_tenant
from settlement.models import RunBatch, RunItem, Tenant
from settlement.payouts import webhook_signature
from settlement.payouts.paypal import parse_webhook
from settlement.runs.execute import SETTLED_BATCHES
from workers.queue import enqueue, run_batch_job_id

blp = Blueprint("webhooks", __name__, description="Provider callbacks")
REFERENCE = re.compile(r"^(?P<slug>[a-z0-9][a-z0-9-]*)-(?P<run>[0-9]{1,18})-(?P<item>[0-9]{1,18})$")
# Outside gunicorn (werkzeug's server), a read never waits for more than this many bytes,
# so a body trickling in cannot keep a read going past the deadline by more than these.
READ_SLICE = 16
log = logging.getLogger("settle.api")
_CERTIFICATES: dict[tuple, webhook_signature.CertificateStore] = {}


@blp.route("/webhooks/paypal", methods=["POST"])
@blp.doc(security=[])
def paypal_event():
    """A PAYMENT.PAYOUTS-ITEM.* event: poll that item's batch. 202 when a poll was queued,
    200 when the event names nothing of ours (PayPal then stops re-sending it)."""
    settings = current_app.config["SETTLE"]
    body = _bounded_body(settings.webhook_max_bytes, settings.webhook_read_timeout_seconds)
    try:
        webhook_signature.verify(request.headers, body, settings.paypal_webhook_id,
                                 _certificates(settings).get)
    except webhook_signature.SignatureRefused as exc:
        log.warning("paypal webhook refused: %s", exc)
        raise Problem(401, "Unauthorized", f"not a PayPal event signed for this webhook: {exc}")
    try:
        jsonsafe.loads(body)  # nesting and duplicate keys, before PayPal's parser sees it
        event = parse_webhook(body)
    except ValueError as exc:
        raise Problem(400, "Bad Request", str(exc))
    if event is None or not event.sender_item_id:
        return {"accepted": False, "reason": "not a payout item event"}, 200
    match = REFERENCE.match(event.sender_item_id)
    if match is None:
        return {"accepted": False, "reason": "not one of our references"}, 200
    session = db()
    tenant = session.scalar(select(Tenant).where(Tenant.slug == match["slug"]))
    if tenant is None:
        return {"accepted": False, "reason": "unknown reference"}, 200
    set_tenant(session, tenant.id)
    batch_id = session.scalar(select(RunItem.batch_id).where(
        RunItem.tenant_id == tenant.id, RunItem.run_id == int(match["run"]),
        RunItem.id == int(match["item"])))
    batch = session.get(RunBatch, (tenant.id, batch_id)) if batch_id else None
    if batch is None or batch.method != "paypal":
        return {"accepted": False, "reason": "unknown reference"}, 200
    settled = batch.status in SETTLED_BATCHES  # the run is done with it: follow it up
    session.rollback()
    enqueue("follow_batch" if settled else "run_batch", tenant.id, batch.id,
            settings=settings, job_id=run_batch_job_id(settings, tenant.id, batch.id))
    return {"accepted": True, "batch": batch.id}, 202


def _bounded_body(limit: int, timeout: float) -> bytes:
    """The request body: 413 when Content-Length (or what arrives) is over `limit`, 408
    when it has not all arrived within `timeout` seconds."""
    sock = request.environ.get("gunicorn.socket")
    if (request.content_length or 0) > limit:
        _stop_reading(sock)
        raise Problem(413, "Payload Too Large", f"a webhook event is at most {limit} bytes")
    late = Problem(408, "Request Timeout", f"the body did not arrive within {timeout:g} s")
    deadline = time.monotonic() + timeout
    # Under gunicorn a read waits for the whole body however slowly it comes: at the
    # deadline a timer closes the socket's reading side, which ends the read at once.
    alarm = threading.Timer(timeout, _stop_reading, [sock]) if sock is not None else None
    if alarm is not None:
        alarm.daemon = True
        alarm.start()
    stream, parts, size = request.stream, [], 0
    try:
        while True:
            if time.monotonic() >= deadline:
                _stop_reading(sock)
                raise late
            try:
                chunk = stream.read(READ_SLICE)
            except OSError:  # the socket, closed by the alarm or by the client
                raise late from None
            if not chunk:
                if time.monotonic() >= deadline or size < (request.content_length or 0):
                    raise late  # cut off by the alarm, not the end of the body
                return b"".join(parts)
            size += len(chunk)
            if size > limit:
                _stop_reading(sock)
                raise Problem(413, "Payload Too Large",
                              f"a webhook event is at most {limit} bytes")
            parts.append(chunk)
    finally:
        if alarm is not None:
            alarm.cancel()


def _stop_reading(sock) -> None:
    """Refusing a body we did not read whole: gunicorn would read the rest of it (to find
    the next request on the connection) on our thread, as slowly as the client sends it.
    Closing the reading side ends the connection once the answer is written."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass  # the client is gone already


def _certificates(settings) -> webhook_signature.CertificateStore:
    """PayPal's certificates, fetched only from PayPal's hosts or our PayPal base URL (the
    local sandbox), one store per such configuration."""
    prefixes = (*webhook_signature.PAYPAL_CERT_PREFIXES,
                settings.paypal_base_url.rstrip("/") + "/")
    key = (prefixes, settings.paypal_timeout_seconds)
    if key not in _CERTIFICATES:
        _CERTIFICATES[key] = webhook_signature.CertificateStore(
            prefixes, timeout=settings.paypal_timeout_seconds)
    return _CERTIFICATES[key]
