"""Reconciliation: our items against what the provider says, and every mismatch listed."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine

from settlement.db import tenant_session
from settlement.models import RunBatch, RunItem
from settlement.payouts.base import FAILED, PENDING, SUCCEEDED, UNCLAIMED
from settlement.runs.batches import next_step
from settlement.runs.execute import AdapterFor, batch_context, batch_lines
from settlement.states import BatchStatus, ItemStatus

OURS_FOR = {SUCCEEDED: ItemStatus.SUCCEEDED, FAILED: ItemStatus.FAILED,
            UNCLAIMED: ItemStatus.UNCLAIMED, PENDING: ItemStatus.SUBMITTED}


@dataclass(frozen=True)
class Mismatch:
    batch_id: int
    item_id: int | None
    ours: str
    provider: str
    note: str


def reconcile_run(engine: Engine, tenant_id: int, run_id: int, adapter_for: AdapterFor,
                  outbox_root: str) -> list[Mismatch]:
    """Ask each provider about each batch (read only) and compare item by item."""
    found: list[Mismatch] = []
    with tenant_session(engine, tenant_id, expire_on_commit=False) as session:
        batches = list(session.scalars(select(RunBatch).where(
            RunBatch.tenant_id == tenant_id, RunBatch.run_id == run_id).order_by(RunBatch.id)))
        work = [(b, batch_context(session, b, outbox_root), batch_lines(session, b),
                 {i.id: i.status for i in session.scalars(select(RunItem).where(
                     RunItem.tenant_id == tenant_id, RunItem.batch_id == b.id))})
                for b in batches]
    for batch, ctx, lines, ours in work:
        if batch.status == BatchStatus.PENDING:
            continue
        if not batch.provider_batch_id:
            # Asking PayPal means sending the same sender_batch_id again (it has no look-up
            # by it): a side effect reconcile, which only reads, leaves to the batch job.
            found.append(Mismatch(
                batch.id, None, batch.status, "not asked",
                "no provider id: whether the provider has this batch is not known"
                + (f" (last error: {batch.last_error})" if batch.last_error else "")
                + "; the next batch job (the watchdog's within a minute, or `settle run "
                  "execute`) will " + next_step(batch.status, None)))
            continue
        result = adapter_for(batch.method).poll(ctx, batch.provider_batch_id, lines)
        if result.error:
            found.append(Mismatch(batch.id, None, batch.status, "error",
                                  f"{result.error}; the batch keeps its provider id "
                                  f"{batch.provider_batch_id} and the next batch job will "
                                  + next_step(batch.status, batch.provider_batch_id)))
        elif not result.outcomes and not result.done:
            # PayPal still processing the batch (its items are read once it is final), a
            # partner that has not answered yet: nothing to compare item by item.
            found.append(Mismatch(batch.id, None, batch.status, "processing",
                                  "the provider has not finished this batch yet"))
            continue
        theirs = {o.item_id: o for o in result.outcomes}
        for item_id, status in ours.items():
            outcome = theirs.get(item_id)
            if outcome is None:
                found.append(Mismatch(batch.id, item_id, status, "missing",
                                      "the provider does not list this item"))
                continue
            expected = OURS_FOR.get(outcome.status, outcome.status)
            if expected != status and not (status == ItemStatus.PLANNED
                                           and expected == ItemStatus.SUBMITTED):
                note = ("outcome not recorded yet" if status in (
                            ItemStatus.SUBMITTED, ItemStatus.UNCLAIMED, ItemStatus.PLANNED)
                        else "the provider changed its answer after we recorded ours")
                found.append(Mismatch(batch.id, item_id, status,
                                      outcome.provider_status or outcome.status, note))
        for item_id in theirs.keys() - ours.keys():
            found.append(Mismatch(batch.id, item_id, "missing", theirs[item_id].status,
                                  "the provider lists an item we do not have"))
    return found
