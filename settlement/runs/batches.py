"""What an operator sees of a run's batches: state, provider id, item counts by state,
attempts and the last error, for `GET /v1/settlement-runs/{id}` and `settle run show`."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.models import RunBatch
from settlement.states import BatchStatus, ItemStatus

# Item states no provider answer changes any more: `returned` is an item PayPal paid and
# later took back (REFUNDED, REVERSED, BLOCKED after SUCCESS), its money back in `available`.
FINAL_ITEM_STATES = (ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.RETURNED)
# A batch in these states has no provider id: whether the provider has its items is not
# known, so its open items are `unknown`, not `planned` or `submitted`.
UNCERTAIN_BATCH_STATES = (BatchStatus.SUBMITTING, BatchStatus.UNKNOWN)
# Batch states in which a run counts the batch as done: `following` is a batch the provider
# has finished whose only open items are PayPal's UNCLAIMED ones (claimed, or returned to us
# after 30 days), which the daily follow-up (`follow_batches`) reads, not the run's jobs.
SETTLED_BATCHES = (BatchStatus.COMPLETED, BatchStatus.FOLLOWING)


def item_counts(batch_status: str, counts: dict | None) -> dict[str, int]:
    """The batch's items by state as an operator should read them."""
    counts = {k: int(v) for k, v in (counts or {}).items() if v}
    if batch_status not in UNCERTAIN_BATCH_STATES:
        return counts
    out = {k: v for k, v in counts.items() if k in FINAL_ITEM_STATES}
    open_items = sum(v for k, v in counts.items() if k not in FINAL_ITEM_STATES)
    if open_items:
        out["unknown"] = open_items
    return out


def next_step(status: str, provider_batch_id: str | None) -> str:
    """What the next batch job (the watchdog's, within a minute) does with the batch."""
    if status == BatchStatus.COMPLETED:
        return "nothing: every item is final (paid PayPal items are read daily for returns)"
    if status == BatchStatus.FOLLOWING:
        return "read it daily until PayPal settles its unclaimed items"
    if status == BatchStatus.PENDING:
        return "submit it (reserving its items first)"
    if provider_batch_id is not None:
        return f"poll it by the provider's id {provider_batch_id}"
    return ("ask the provider whether it has it, by its idempotency key (PayPal: the same "
            "sender_batch_id again, which PayPal answers with the original batch, paying "
            "at most once); submit it only if the provider never got it")


def batch_views(session: Session, tenant_id: int, run_id: int) -> list[dict]:
    batches = session.scalars(select(RunBatch).where(
        RunBatch.tenant_id == tenant_id, RunBatch.run_id == run_id).order_by(RunBatch.id))
    return [{"id": b.number, "method": b.method, "seq": b.seq, "status": b.status,
             "idempotency_key": b.idempotency_key, "provider_batch_id": b.provider_batch_id,
             "items": b.items, "amount": b.amount,
             "counts": item_counts(b.status, b.status_counts), "attempts": b.attempts,
             "last_error": b.last_error, "next": next_step(b.status, b.provider_batch_id),
             "submitted_at": b.submitted_at.isoformat() if b.submitted_at else None}
            for b in batches]
