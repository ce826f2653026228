"""PayPal's webhook for payout item events.

PayPal calls it without our API keys, and its signature is not verified here, so an event
is only a hint: it makes us poll the item's batch now, and money moves on what the poll
reports, never on the event's body. A forged event can at most cause one extra poll.
"""
from __future__ import annotations

import re

from flask import current_app, request
from flask_smorest import Blueprint
from sqlalchemy import select

from api.database import db
from api.errors import Problem
from settlement import jsonsafe
from settlement.db import set_tenant
from settlement.models import RunBatch, RunItem, Tenant
from settlement.payouts.paypal import parse_webhook
from settlement.runs.execute import SETTLED_BATCHES
from workers.queue import enqueue, run_batch_job_id

blp = Blueprint("webhooks", __name__, description="Provider callbacks")
REFERENCE = re.compile(r"^(?P<slug>[a-z0-9][a-z0-9-]*)-(?P<run>[0-9]{1,18})-(?P<item>[0-9]{1,18})$")
MAX_BODY = 1 << 20


@blp.route("/webhooks/paypal", methods=["POST"])
@blp.doc(security=[])
def paypal_event():
    """A PAYMENT.PAYOUTS-ITEM.* event: poll that item's batch. 202 when a poll was queued,
    200 when the event names nothing of ours (PayPal then stops re-sending it)."""
    body = request.get_data(cache=False)[:MAX_BODY + 1]
    if len(body) > MAX_BODY:
        raise Problem(413, "Payload Too Large", f"at most {MAX_BODY} bytes")
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
    settings = current_app.config["SETTLE"]
    enqueue("follow_batch" if settled else "run_batch", tenant.id, batch.id,
            settings=settings, job_id=run_batch_job_id(settings, tenant.id, batch.id))
    return {"accepted": True, "batch": batch.id}, 202
