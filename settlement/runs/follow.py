"""PayPal to the end: what happens to paid items after their run is done.

PayPal keeps changing items after a batch completes. An item to a receiver without an
account is UNCLAIMED: claimed later (SUCCESS) or returned to us after 30 days (RETURNED).
An item that succeeded can still be REFUNDED by its receiver, REVERSED or BLOCKED. The run's
own jobs stop when the batch is settled (`completed`, or `following` when only unclaimed
items are open), so `follow_batches`, a daily job on the clock (and a webhook event, at
once), reads each such batch again:
- an unclaimed item that is claimed moves reserved -> paid, one that is returned moves
  reserved -> available, as any outcome does;
- an item taken back after it was paid becomes `returned` and a compensating entry moves
  its amount paid -> available (the paid entry is never rewritten).
Batches are followed while they have unclaimed items, and paid PayPal batches for
FOLLOW_WINDOW after submission. Safe to run at any time, twice at once (each batch under
its hold; every move is guarded and keyed).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from settlement.db import tenant_session
from settlement.models import RunBatch
from settlement.payouts.paypal.policy import FOLLOW_WINDOW, POLL_WHILE_RUNNING
from settlement.runs.execute import (BUSY, AdapterFor, batch_context, batch_hold, batch_lines,
                                     record_result)
from settlement.states import BatchStatus, ItemStatus


@dataclass
class FollowReport:
    followed: dict[int, str] = field(default_factory=dict)  # batch id -> status after
    failed: dict[int, str] = field(default_factory=dict)  # batch id -> why

    def as_dict(self) -> dict:
        return {"followed": {str(k): v for k, v in self.followed.items()},
                "failed": {str(k): v for k, v in self.failed.items()}}


def batches_to_follow(engine: Engine, now: dt.datetime | None = None) -> list[tuple[int, int]]:
    """(tenant_id, batch_id) of every settled PayPal batch still worth reading."""
    since = (now or dt.datetime.now(dt.timezone.utc)) - FOLLOW_WINDOW
    with tenant_session(engine) as session:
        rows = session.execute(select(
            RunBatch.tenant_id, RunBatch.id, RunBatch.status, RunBatch.status_counts).where(
            RunBatch.method.in_(POLL_WHILE_RUNNING),
            RunBatch.provider_batch_id.is_not(None),
            or_(RunBatch.status == BatchStatus.FOLLOWING,
                (RunBatch.status == BatchStatus.COMPLETED) & (RunBatch.submitted_at >= since)))
            .order_by(RunBatch.id)).all()
    return [(t, b) for t, b, status, counts in rows
            if status == BatchStatus.FOLLOWING
            or int((counts or {}).get(ItemStatus.SUCCEEDED, 0))]


def follow_batch(engine: Engine, tenant_id: int, batch_id: int, adapter_for: AdapterFor,
                 outbox_root: str) -> str:
    """Read one settled batch again and record what changed. Returns its status (`busy`
    when a live job holds it)."""
    with batch_hold(engine, batch_id) as free:
        if not free:
            return BUSY
        with tenant_session(engine, tenant_id, expire_on_commit=False) as session:
            batch = session.get(RunBatch, (tenant_id, batch_id))
            ctx = batch_context(session, batch, outbox_root)
            lines = batch_lines(session, batch)
            provider_id = batch.provider_batch_id
        result = adapter_for(ctx.method).poll(ctx, provider_id, lines)
        return record_result(engine, tenant_id, batch_id, result)


def follow_batches(engine: Engine, adapter_for: AdapterFor, outbox_root: str,
                   now: dt.datetime | None = None) -> FollowReport:
    report = FollowReport()
    for tenant_id, batch_id in batches_to_follow(engine, now):
        try:
            report.followed[batch_id] = follow_batch(engine, tenant_id, batch_id,
                                                     adapter_for, outbox_root)
        except Exception as exc:  # noqa: BLE001 - one batch's trouble must not stop the rest
            report.failed[batch_id] = f"{type(exc).__name__}: {exc}"
    return report
