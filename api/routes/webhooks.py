"""PayPal's webhook for payout item events.

PayPal calls it without our API keys. What it sends is held to PayPal's own bounds before
anything else: a body of at most `webhook_max_bytes` (refused from Content-Length, before
reading), read within `webhook_read_timeout_seconds` (a client trickling its body cannot
hold a worker's thread), and PayPal's signature for our webhook id
(settlement/payouts/webhook_signature.py), sent within `TRANSMISSION_WINDOW` of now and
never received before (a replayed transmission); a refused event enqueues nothing. Even a
genuine event is only a hint: it makes us poll the item's batch now, and money moves on
what the poll reports, never on the event's body.
"""
from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time

import sqlalchemy as sa
from flask import current_app, request
from flask_smorest import Blueprint

from api.database import db
from api.errors import Problem
from settlement import jsonsafe
from settlement.payouts import webhook_signature
from settlement.payouts.paypal import parse_webhook
from settlement.payouts.paypal.lookup import batch_of_item
from settlement.payouts.paypal.reference import ItemReference, parse_item_reference
from settlement.runs.batches import SETTLED_BATCHES
from settlement.sql import insert_or_skip
from workers.queue import enqueue, run_batch_job_id

blp = Blueprint("webhooks", __name__, description="Provider callbacks")
# Outside gunicorn (werkzeug's server), a read never waits for more than this many bytes,
# so a body trickling in cannot keep a read going past the deadline by more than these.
READ_SLICE = 16
log = logging.getLogger("settle.api")
# How far PAYPAL-TRANSMISSION-TIME may be from our clock. PayPal publishes no tolerance;
# 5 minutes is the common one for signed webhooks (Stripe's SDKs default to 300 s): room
# for clock skew and a slow delivery, short enough that a captured event is soon useless.
# A genuine event refused as late costs nothing: events are hints, and the daily follow-up
# of PayPal's batches reads the same state.
TRANSMISSION_WINDOW = dt.timedelta(minutes=5)
MAX_TRANSMISSION_ID = 128
# Transmission ids seen within the window (revision 0015); older ones need no memory, as
# their transmission time is refused anyway.
SEEN = sa.table("webhook_transmissions", sa.column("transmission_id", sa.String),
                sa.column("seen_at", sa.DateTime(timezone=True)))
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
    _refuse_replay(request.headers["PAYPAL-TRANSMISSION-ID"],
                   request.headers["PAYPAL-TRANSMISSION-TIME"])
    try:
        jsonsafe.loads(body)  # nesting and duplicate keys, before PayPal's parser sees it
        event = parse_webhook(body)
    except ValueError as exc:
        raise Problem(400, "Bad Request", str(exc))
    if event is None or not event.sender_item_id:
        return {"accepted": False, "reason": "not a payout item event"}, 200
    reference = parse_item_reference(event.sender_item_id)
    if reference is None:
        return {"accepted": False, "reason": "not one of our references"}, 200
    found = _batch_of(reference)
    if found is None or found.method != "paypal":
        return {"accepted": False, "reason": "unknown reference"}, 200
    tenant_id, batch_id = found.tenant_id, found.batch_id
    settled = found.status in SETTLED_BATCHES  # the run is done with it: follow it up
    enqueue("follow_batch" if settled else "run_batch", tenant_id, batch_id,
            settings=settings, job_id=run_batch_job_id(settings, tenant_id, batch_id))
    return {"accepted": True, "batch": batch_id}, 202


def _batch_of(reference: ItemReference):
    """The item's batch (settlement/payouts/paypal/lookup.py), read outside any tenant."""
    session = db()
    try:
        return batch_of_item(session, reference)
    finally:
        session.rollback()


def _refuse_replay(transmission_id: str, transmission_time: str) -> None:
    """401 when the signed transmission time is outside TRANSMISSION_WINDOW of now, 409 when
    this transmission id was received before (someone replays a captured event)."""
    try:
        sent = dt.datetime.fromisoformat(transmission_time)
    except ValueError:
        sent = None
    if sent is None or sent.tzinfo is None:
        raise Problem(401, "Unauthorized", "PAYPAL-TRANSMISSION-TIME must be an ISO 8601 "
                      f"time with its zone, not {transmission_time[:40]!r}")
    now = dt.datetime.now(dt.timezone.utc)
    if abs(now - sent) > TRANSMISSION_WINDOW:
        raise Problem(401, "Unauthorized", f"PAYPAL-TRANSMISSION-TIME {transmission_time} is "
                      f"more than {TRANSMISSION_WINDOW.total_seconds():g} s from now")
    if len(transmission_id) > MAX_TRANSMISSION_ID:
        raise Problem(400, "Bad Request",
                      f"PAYPAL-TRANSMISSION-ID is over {MAX_TRANSMISSION_ID} characters")
    if not _first_sight(transmission_id, now):
        raise Problem(409, "Conflict", f"PAYPAL-TRANSMISSION-ID {transmission_id} was "
                      "received before: a transmission is accepted once")


def _first_sight(transmission_id: str, now: dt.datetime) -> bool:
    """Remember the id (committed at once, so a concurrent replay finds it); False when it
    was there already. Ids older than twice the window are forgotten on the way."""
    session = db()
    session.execute(sa.delete(SEEN).where(SEEN.c.seen_at < now - 2 * TRANSMISSION_WINDOW))
    inserted = session.execute(
        insert_or_skip(session, SEEN).values(transmission_id=transmission_id, seen_at=now)
        .on_conflict_do_nothing(index_elements=["transmission_id"])
        .returning(SEEN.c.transmission_id)).first()
    session.commit()
    return inserted is not None


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
