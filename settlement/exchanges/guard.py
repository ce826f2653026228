"""A payout run and an exchange never spend the same balance.

A run freezes each member's payable amount when it is planned (settlement/runs/plan.py), but
the money leaves `available` only when the run's batch is first submitted (reserved ->
paid). Between the two, the planned amount is still in the member's available balance, and
an exchange reserving it then would make the run pay more than is left (the batch's
reservation would drive `available` below zero).

The rule: an exchange may spend only what is available LESS what open runs (planned,
approved, or executing with the batch not yet submitted) will pay the member. An exchange
asking for more is refused with `held_for_payout`, naming the run.

Two transactions that each check before the other commits could still both pass: planning
holds the tenant's row FOR UPDATE from its start to its commit, and an exchange request
takes the same row FOR KEY SHARE first (PostgreSQL; exchanges do not wait for one another,
only for a plan being made, and a plan waits for the exchanges in flight). Whichever
commits first, the other then sees it: the plan reads balances without the reserved
points, or the exchange reads the frozen plan. SQLite serializes every writer already.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.sql import is_postgres
from settlement.states import BatchStatus, RunStatus, sql_in


def hold_against_planning(session: Session, tenant_id: int) -> None:
    """Wait for a plan being made, and keep one from starting, until this commits."""
    if is_postgres(session):
        session.execute(text("SELECT 1 FROM tenants WHERE id = :t FOR KEY SHARE"),
                        {"t": tenant_id})


def planned_unreserved(session: Session, tenant_id: int,
                       member_id: int) -> tuple[int, dt.date | None]:
    """(what open runs will pay the member that is still in `available`, the payout date of
    such a run). Two small queries: the tenant's open runs (usually none), then the member's
    item in each (by uq_run_items_member)."""
    runs = dict(session.execute(text(
        "SELECT id, payout_date FROM settlement_runs WHERE tenant_id = :t AND status IN "
        + sql_in(RunStatus.PLANNED, RunStatus.APPROVED, RunStatus.EXECUTING)),
        {"t": tenant_id}).all())
    if not runs:
        return 0, None
    rows = session.execute(text(
        "SELECT i.run_id, i.amount FROM run_items i JOIN run_batches b "
        "ON b.tenant_id = i.tenant_id AND b.id = i.batch_id "
        "WHERE i.tenant_id = :t AND i.member_id = :m AND i.run_id IN ("
        + ", ".join(str(int(r)) for r in runs) + ") "
        f"AND b.status = '{BatchStatus.PENDING}' AND b.attempts = 0"),
        {"t": tenant_id, "m": member_id}).all()
    if not rows:
        return 0, None
    payout = runs[rows[0][0]]
    if isinstance(payout, str):  # SQLite hands the text back
        payout = dt.date.fromisoformat(payout)
    return sum(int(amount) for _, amount in rows), payout
