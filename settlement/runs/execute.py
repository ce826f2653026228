"""Executing an approved run: reserve, batch, submit, record outcomes, complete.

Crash safety rests on three rules:
- every step is a transaction that can run again: an item changes state once (a guarded
  UPDATE), and its money moves in the same transaction;
- a batch's money is reserved (one journal entry keyed by the batch) in the transaction that
  marks it `submitting`, and that is committed BEFORE the provider is called: a worker that
  dies mid-call leaves a batch whose outcome is unknown, never one that looks unsent, and
  nothing is ever submitted unreserved. Reserving per batch, on the workers, spreads a
  million members' reservation over them instead of one statement before any batch starts;
- a batch with a provider id is never sent again, only polled by that id; a batch without
  one whose outcome is unknown is asked about (`find`, by the same idempotency key), never
  sent blindly.

The batch state machine (`run_batches.status`):

    pending ──job──> submitting ──provider has it──> submitted ──all items final──> completed
                        │  ▲                          ▲    │
           answer lost  ▼  │ find: never got it       │    └─ poll: some items still open
                      unknown ──find: has it (id)─────┘

- `pending`: nothing reserved or sent. A job locks the row, marks it `submitting` and
  reserves its items in one transaction, commits, then calls `submit`.
- `submitting` / `unknown`: reserved; the provider may or may not have the batch, and we
  hold no provider id (`submitting`: a worker died during the call; `unknown`: the call
  ended without a verdict). A job calls `find` (PayPal: the same `sender_batch_id` again,
  which PayPal answers with the original batch) and moves it to `submitted` with the id, or
  back to `pending` when the provider certainly never had it.
- `submitted`: the provider id is known. A job only polls it; trouble while polling leaves
  it `submitted` (with `last_error`), never `unknown`: the id is never thrown away.
- `completed`: every item succeeded or failed and its money moved.

Who moves them: the batch job (`run_batch`), started by `execute_run`, by `settle run
execute`, by `POST .../resume` and by the watchdog (`watch_runs`, every minute on the
clock process). At most one job works a batch at a time: on PostgreSQL a job holds the
batch's advisory lock while it works (`batch_hold`); a second job finds it held and leaves
(`busy`), and a job whose worker died releases it with its connection, so the watchdog
sees the batch free and resumes it. Even without the lock (SQLite, or a dropped
connection), every move above is guarded and the provider's idempotency key makes a second
submission a question, so two jobs on one batch never pay twice.
"""
from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from settlement import failpoints
from settlement.db import tenant_session
from settlement.ledger.writer import existing_entry, post_from_select
from settlement.models import RunBatch, RunItem, SettlementRun, Tenant
from settlement.payouts.base import (FAILED, REFUSED, SUBMITTED, Address, BatchContext,
                                     BatchResult, ItemOutcome, PayoutAdapter, PayoutLine)
from settlement.payouts.paypal.policy import POLL_WHILE_RUNNING, past_find_window
from settlement.payouts.paypal.reference import item_reference
from settlement.runs.batches import FINAL_ITEM_STATES, SETTLED_BATCHES
from settlement.runs.outcomes import apply_outcomes
from settlement.runs.plan import RunError, get_run
from settlement.sql import is_postgres
from settlement.states import BatchStatus, ItemStatus, RunStatus, sql_in
from settlement.tenants.service import policy_of

AdapterFor = Callable[[str], PayoutAdapter]


def start_execution(session: Session, tenant_id: int, run_id: int) -> list[int]:
    """Mark an approved run executing. Returns the ids of the batches still to finish (each
    reserves its own items when it is submitted); running it again just returns them."""
    run = get_run(session, tenant_id, run_id)
    if run.status in (RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_FAILURES):
        return []
    if run.status not in (RunStatus.APPROVED, RunStatus.EXECUTING):
        raise RunError("not_approved",
                       f"run {run.number} is {run.status}; approve it first")
    if run.status == RunStatus.APPROVED:
        run.status, run.executed_at = RunStatus.EXECUTING, dt.datetime.now(dt.timezone.utc)
        session.flush()
    # A run with nothing to pay completes here, and so does one whose last batches were
    # completed by workers that each saw the other's batch still open.
    _complete_run_if_done(session, run_id, tenant_id)
    return interleaved(session.execute(select(RunBatch.id, RunBatch.method).where(
        RunBatch.tenant_id == tenant_id, RunBatch.run_id == run_id,
        RunBatch.status.notin_(SETTLED_BATCHES)).order_by(RunBatch.id)).all())


def interleaved(batches: list[tuple[int, str]]) -> list[int]:
    """Batch ids (in planning order) with the methods spread evenly through the list, each
    method's n-th batch at the (n + 1/2)/count point of the run. Workers taking them in this
    order keep every method going at once: PayPal's batches wait on PayPal while the
    others' files are written, instead of both workers waiting on one provider at a time."""
    count: dict[str, int] = {}
    place = []
    for batch_id, method in batches:
        count[method] = count.get(method, 0) + 1
        place.append((count[method] - 0.5, method, batch_id))
    return [batch_id for _, batch_id in sorted(
        ((n / count[method], batch_id) for n, method, batch_id in place))]


def _reserve(session: Session, batch: RunBatch) -> None:
    """available -> reserved for the batch's items, as one entry for the batch."""
    t = batch.tenant_id
    key = f"run:{batch.run_id}:batch:{batch.id}:reserve"
    if not batch.amount or existing_entry(session, t, key) is not None:
        return
    run = session.get(SettlementRun, (t, batch.run_id))
    post_from_select(session, t, key, "run_reserve",
                     f"run {run.number} ({run.payout_date.isoformat()}) {batch.method} batch "
                     f"{batch.seq}: reserved for payout", currency=run.currency, legs_sql="""
      SELECT 'available' AS account, member_id, -amount AS amount FROM run_items
       WHERE tenant_id = :t AND batch_id = :b AND amount <> 0
      UNION ALL
      SELECT 'reserved', member_id, amount FROM run_items
       WHERE tenant_id = :t AND batch_id = :b AND amount <> 0""",
                     params={"t": t, "b": batch.id}, skip_if_empty=False)


def batch_context(session: Session, batch: RunBatch, outbox_root: str) -> BatchContext:
    run = session.get(SettlementRun, (batch.tenant_id, batch.run_id))
    tenant = session.get(Tenant, batch.tenant_id)
    outbox = Path(outbox_root) / tenant.slug / f"run-{run.id}"
    return BatchContext(tenant=tenant.slug, run_id=run.id, payout_date=run.payout_date,
                        method=batch.method, seq=batch.seq,
                        idempotency_key=batch.idempotency_key, outbox=outbox)


def batch_lines(session: Session, batch: RunBatch) -> list[PayoutLine]:
    """The batch's items as adapter lines (plain rows: no ORM objects for 50,000 items).
    Only checks are mailed: the other methods' lines carry no address."""
    tenant = session.get(Tenant, batch.tenant_id)
    policy = policy_of(tenant)
    mailed = batch.method == "check"
    address = ("m.name, m.address_line1, m.address_line2, m.city, m.region, m.postal_code, "
               "m.country" if mailed else "NULL")
    rows = session.execute(text(f"""
      SELECT i.id, i.run_id, i.amount, i.points, i.destination, m.external_id, {address}
      FROM run_items i JOIN members m ON m.tenant_id = i.tenant_id AND m.id = i.member_id
      WHERE i.tenant_id = :t AND i.batch_id = :b ORDER BY i.id"""),
                           {"t": batch.tenant_id, "b": batch.id}).all()
    currency, digits, slug = policy.currency, policy.minor_digits, tenant.slug
    return [PayoutLine(item_id=r[0], reference=item_reference(slug, r[1], r[0]), member=r[5],
                       amount=r[2], currency=currency, digits=digits, points=r[3],
                       destination=r[4], address=Address(*r[6:13]) if mailed else None)
            for r in rows]


# Namespace of the batches' advisory locks (pg_try_advisory_lock(bigint)): the batch id in
# the low 48 bits.
_HOLD_NAMESPACE = 0x5E77 << 48
BUSY = "busy"  # run_batch's answer when another live job holds the batch


@contextmanager
def batch_hold(engine: Engine, batch_id: int,
               namespace: int = _HOLD_NAMESPACE) -> Iterator[bool]:
    """Hold the batch for this job: True if no other live job holds it. The lock is a
    session-level advisory lock on a connection of its own (autocommit, so it is never
    idle in a transaction) and goes when the job ends or its process dies. SQLite runs
    jobs in-process, one at a time: always True. Other kinds of batch (exchanges) hold
    theirs in a namespace of their own."""
    if not is_postgres(engine):
        yield True
        return
    key = namespace | batch_id
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        try:
            yield held
        finally:
            if held:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                except Exception:  # noqa: BLE001 - a dropped connection released it already
                    conn.invalidate()


def batch_is_held(engine: Engine, batch_id: int) -> bool:
    """Whether a live job holds the batch now (PostgreSQL; False on SQLite)."""
    if not is_postgres(engine):
        return False
    with batch_hold(engine, batch_id) as free:
        return not free


def run_batch(engine: Engine, tenant_id: int, batch_id: int, adapter_for: AdapterFor,
              outbox_root: str, *, poll_interval: float = 0.5, max_polls: int = 20) -> str:
    """The worker job for one batch: move it along the state machine of the module
    docstring (submit a pending batch, find one whose outcome is unknown, poll one the
    provider has) until every item is final or `max_polls` is reached. Returns the batch's
    status (`busy` when another live job holds it); a batch left `submitted` or `unknown`
    is picked up again by a later job (the watchdog's, every minute)."""
    with batch_hold(engine, batch_id) as free:
        if not free:
            return BUSY
        return _work_batch(engine, tenant_id, batch_id, adapter_for, outbox_root,
                           poll_interval=poll_interval, max_polls=max_polls)


def _work_batch(engine: Engine, tenant_id: int, batch_id: int, adapter_for: AdapterFor,
                outbox_root: str, *, poll_interval: float, max_polls: int) -> str:
    lines: list[PayoutLine] | None = None  # read once: a batch's items never change
    for attempt in range(max_polls + 1):
        with tenant_session(engine, tenant_id, expire_on_commit=False) as session:
            # Locked: two jobs of one batch must not both find it pending and submit it.
            batch = session.get(RunBatch, (tenant_id, batch_id), with_for_update=True)
            if batch is None:
                raise LookupError(f"no batch {batch_id}")
            if batch.status == BatchStatus.COMPLETED:
                return batch.status
            ctx = batch_context(session, batch, outbox_root)
            if lines is None:
                lines = batch_lines(session, batch)
            status, provider_id = batch.status, batch.provider_batch_id
            submitted_at = batch.submitted_at
            if status == BatchStatus.PENDING:
                batch.status, batch.attempts = BatchStatus.SUBMITTING, batch.attempts + 1
                batch.submitted_at = dt.datetime.now(dt.timezone.utc)
                _reserve(session, batch)
                session.commit()
        adapter = adapter_for(ctx.method)
        if status == BatchStatus.PENDING:
            failpoints.reach("batch.submitting")
            result = adapter.submit(ctx, lines)
        elif provider_id is not None:
            # The provider has it: ask it by its id, never send it again.
            failpoints.reach("batch.polling")
            result = adapter.poll(ctx, provider_id, lines)
        else:  # submitting or unknown, without an id
            if past_find_window(submitted_at):
                # PayPal forgets a sender_batch_id after 30 days: asking by re-posting could
                # then pay twice. An operator reconciles such a batch by hand.
                _note_error(engine, tenant_id, batch_id, "unknown for over 29 days: PayPal "
                            "no longer recognises the sender_batch_id; reconcile by hand")
                return BatchStatus.UNKNOWN
            result = adapter.find(ctx, lines)
            if result.state == REFUSED and not result.outcomes:
                _set_status(engine, tenant_id, batch_id, BatchStatus.PENDING)  # it never got there
                continue
        failpoints.reach("batch.answered")
        final = record_result(engine, tenant_id, batch_id, result)
        failpoints.reach("batch.recorded")
        if final in (BatchStatus.COMPLETED, BatchStatus.FOLLOWING, BatchStatus.UNKNOWN) or \
                ctx.method not in POLL_WHILE_RUNNING:
            return final
        if attempt < max_polls:
            time.sleep(poll_interval)
    return BatchStatus.SUBMITTED


def _set_status(engine: Engine, tenant_id: int, batch_id: int, status: BatchStatus) -> None:
    with tenant_session(engine, tenant_id) as session:
        session.get(RunBatch, (tenant_id, batch_id)).status = status
        session.commit()


def _note_error(engine: Engine, tenant_id: int, batch_id: int, error: str) -> None:
    with tenant_session(engine, tenant_id) as session:
        session.get(RunBatch, (tenant_id, batch_id)).last_error = error
        session.commit()


def record_result(engine: Engine, tenant_id: int, batch_id: int, result: BatchResult) -> str:
    """Store what the provider said, move the money of items that reached an outcome, and
    complete the batch (and the run) when nothing is left open."""
    with tenant_session(engine, tenant_id, expire_on_commit=False) as session:
        batch = session.get(RunBatch, (tenant_id, batch_id))
        was_settled = batch.status in SETTLED_BATCHES
        batch.provider_batch_id = result.provider_batch_id or batch.provider_batch_id
        if result.state == SUBMITTED:
            if not was_settled:  # a follow-up poll leaves a settled batch settled
                batch.status = BatchStatus.SUBMITTED
            batch.last_error = result.error
        elif result.state == REFUSED:
            batch.status = BatchStatus.SUBMITTED
            batch.last_error = result.error
            known = {o.item_id for o in result.outcomes}
            result.outcomes.extend(
                ItemOutcome(item_id, FAILED, reason=f"batch refused: {result.error}")
                for item_id in session.scalars(select(RunItem.id).where(
                    RunItem.tenant_id == tenant_id, RunItem.batch_id == batch_id))
                if item_id not in known)
        elif batch.provider_batch_id is not None:
            # The provider has it (we know its id): no answer now is not "unknown".
            if not was_settled:
                batch.status = BatchStatus.SUBMITTED
            batch.last_error = result.error
        else:
            batch.status, batch.last_error = BatchStatus.UNKNOWN, result.error
        session.flush()
        apply_outcomes(session, batch, result.outcomes)
        counts = {status: int(n) for status, n in session.execute(text(
            "SELECT status, count(*) FROM run_items WHERE tenant_id = :t AND batch_id = :b "
            "GROUP BY status"), {"t": tenant_id, "b": batch_id})}
        batch.status_counts = counts  # the run's progress, read from its batches
        open_items = sum(n for status, n in counts.items() if status not in FINAL_ITEM_STATES)
        if batch.status in (BatchStatus.SUBMITTED, *SETTLED_BATCHES):
            if open_items == 0:
                batch.status = BatchStatus.COMPLETED
            elif open_items == counts.get(ItemStatus.UNCLAIMED, 0):
                batch.status = BatchStatus.FOLLOWING
            if batch.status in SETTLED_BATCHES and not was_settled:
                session.flush()
                _complete_run_if_done(session, batch.run_id, tenant_id)
        session.commit()
        return batch.status


def _complete_run_if_done(session: Session, run_id: int, tenant_id: int) -> None:
    p = {"t": tenant_id, "r": run_id}
    # Two workers finishing the last two batches at once must not both read the other's as
    # still open: the run's row serializes them, and the count below, a statement after
    # the lock, sees the batch the other committed.
    session.scalar(select(SettlementRun.id).where(
        SettlementRun.tenant_id == tenant_id, SettlementRun.id == run_id).with_for_update())
    left = session.execute(text(
        "SELECT count(*) FROM run_batches WHERE tenant_id = :t AND run_id = :r "
        f"AND status NOT IN {sql_in(*SETTLED_BATCHES)}"), p).scalar_one()
    if left:
        return
    counts = session.scalars(select(RunBatch.status_counts).where(
        RunBatch.tenant_id == tenant_id, RunBatch.run_id == run_id)).all()
    if all(c is not None for c in counts):  # each batch's, recounted as it completed
        failed = sum(int(c.get(ItemStatus.FAILED, 0)) for c in counts)
    else:  # batches planned before their counts were kept
        failed = session.execute(text(
            "SELECT count(*) FROM run_items WHERE tenant_id = :t AND run_id = :r "
            f"AND status = '{ItemStatus.FAILED}'"), p).scalar_one()
    run = session.get(SettlementRun, (tenant_id, run_id))
    run.status = RunStatus.COMPLETED_WITH_FAILURES if failed else RunStatus.COMPLETED
    run.completed_at = dt.datetime.now(dt.timezone.utc)
    session.flush()


def execute_run(engine: Engine, tenant_id: int, run_id: int, adapter_for: AdapterFor,
                outbox_root: str, **poll) -> list[int]:
    """Start (or resume) a run and work every open batch here, one after the other (the
    in-process mode; with rq each batch is a job of its own)."""
    with tenant_session(engine, tenant_id) as session:
        batch_ids = start_execution(session, tenant_id, run_id)
        session.commit()
    for batch_id in batch_ids:
        run_batch(engine, tenant_id, batch_id, adapter_for, outbox_root, **poll)
    return batch_ids

