"""Moving money on a payout item's outcome, as the provider reports it.

An item's state moves once (a guarded UPDATE), and the money of the items that moved is
posted in the same transaction through the ledger's writer, one entry per outcome of each
answer recorded, fed from a temporary table of the moves (one INSERT ... SELECT):
- succeeded: reserved -> paid;
- failed: reserved -> available (the member keeps it);
- returned (PayPal paid it, then took it back: REFUNDED, REVERSED, BLOCKED after SUCCESS):
  the paid entry stands, a compensating entry moves it paid -> available.
Items the provider has but has not finished (or UNCLAIMED ones) become `submitted` or
`unclaimed` and move no money.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.ledger.writer import post_from_select
from settlement.models import RunBatch, SettlementRun
from settlement.payouts.base import FAILED, SUCCEEDED, UNCLAIMED, ItemOutcome
from settlement.runs.batches import FINAL_ITEM_STATES, SETTLED_BATCHES
from settlement.sql import analyze_table, copy_rows, create_temp_table, drop_temp_tables
from settlement.states import BatchStatus, ItemStatus, sql_in


def apply_outcomes(session: Session, batch: RunBatch, outcomes: list[ItemOutcome]) -> None:
    """Item states move once; each move's money is posted in the same transaction:
    succeeded: reserved -> paid; failed: reserved -> available (the member keeps it)."""
    t = batch.tenant_id
    create_temp_table(session, "outcomes", "(item_id BIGINT PRIMARY KEY, status TEXT, "
                      "provider_item_id TEXT, provider_status TEXT, reason TEXT)")
    if outcomes:
        copy_rows(session, "outcomes", ("item_id", "status", "provider_item_id",
                                        "provider_status", "reason"),
                  [(o.item_id, o.status, o.provider_item_id, o.provider_status,
                    (o.reason or "")[:200] or None) for o in outcomes])
    analyze_table(session, "outcomes")  # no statistics: the planner loops
    p = {"t": t, "b": batch.id}
    # Items the provider has (or that have no outcome yet) are at least `submitted`.
    open_status = (f"CASE WHEN o.status = '{UNCLAIMED}' THEN '{ItemStatus.UNCLAIMED}' "
                   f"ELSE '{ItemStatus.SUBMITTED}' END")
    session.execute(text(f"""
      UPDATE run_items SET status = {open_status},
                           provider_item_id = COALESCE(o.provider_item_id, run_items.provider_item_id),
                           provider_status = COALESCE(o.provider_status, run_items.provider_status)
      FROM outcomes o
      WHERE run_items.tenant_id = :t AND run_items.batch_id = :b AND run_items.id = o.item_id
        AND run_items.status NOT IN {sql_in(*FINAL_ITEM_STATES)}
        AND o.status NOT IN {sql_in(SUCCEEDED, FAILED)}
        -- a poll that finds an item as it was rewrites nothing
        AND (run_items.status <> {open_status}
             OR o.provider_item_id IS DISTINCT FROM run_items.provider_item_id
                AND o.provider_item_id IS NOT NULL
             OR o.provider_status IS DISTINCT FROM run_items.provider_status
                AND o.provider_status IS NOT NULL)"""), p)
    # PayPal took back an item it had paid (REFUNDED, REVERSED, BLOCKED after SUCCESS): the
    # paid entry stands, a compensating entry moves the money back to `available`.
    returned = session.execute(text(f"""
      UPDATE run_items SET status = '{ItemStatus.RETURNED}',
                           provider_status = o.provider_status,
                           failure_reason = o.reason
      FROM outcomes o
      WHERE run_items.tenant_id = :t AND run_items.batch_id = :b AND run_items.id = o.item_id
        AND run_items.status = '{ItemStatus.SUCCEEDED}' AND o.status = '{FAILED}'
      RETURNING run_items.id, run_items.member_id, run_items.amount"""), p).all()
    moved = session.execute(text(f"""
      UPDATE run_items SET status = o.status, provider_item_id = o.provider_item_id,
                           provider_status = o.provider_status, failure_reason = o.reason
      FROM outcomes o
      WHERE run_items.tenant_id = :t AND run_items.batch_id = :b AND run_items.id = o.item_id
        AND run_items.status NOT IN {sql_in(*FINAL_ITEM_STATES)}
        AND o.status IN {sql_in(SUCCEEDED, FAILED)}
      RETURNING run_items.id, run_items.member_id, run_items.amount, run_items.status"""),
                            p).all()
    # Final outcomes went first, so this touches only the items still waiting: none when
    # the provider answered for every item (adapters answer only for the batch's lines).
    answered = len({o.item_id for o in outcomes})
    if batch.status in (BatchStatus.SUBMITTED, *SETTLED_BATCHES) and answered < batch.items:
        session.execute(text(
            f"UPDATE run_items SET status = '{ItemStatus.SUBMITTED}' "
            f"WHERE tenant_id = :t AND batch_id = :b AND status = '{ItemStatus.PLANNED}'"), p)
    drop_temp_tables(session, "outcomes")
    # Memos are read in members' statements: the run as the tenant numbers it.
    run_number = session.get(SettlementRun, (batch.tenant_id, batch.run_id)).number
    for status, account, memo in ((ItemStatus.SUCCEEDED, "paid", "paid"),
                                  (ItemStatus.FAILED, "available",
                                   "payout failed: back to balance")):
        rows = [r for r in moved if r.status == status and r.amount]
        if rows:
            _post_moves(session, batch, rows, account,
                        f"run {run_number} {batch.method} batch {batch.seq}: {memo}")
    rows = [r for r in returned if r.amount]
    if rows:
        _post_moves(session, batch, rows, "available",
                    f"run {run_number} {batch.method} batch {batch.seq}: paid, then taken "
                    f"back by the provider: back to balance", source="paid", kind="returned")


def _post_moves(session: Session, batch: RunBatch, rows, account: str, memo: str, *,
                source: str = "reserved", kind: str | None = None) -> None:
    """One entry moving each row's amount from `source` to `account` for its member."""
    first = min(r.id for r in rows)
    kind = kind or account
    key = f"run:{batch.run_id}:batch:{batch.id}:{kind}:{first}:{len(rows)}"
    currency = session.get(SettlementRun, (batch.tenant_id, batch.run_id)).currency
    create_temp_table(session, "moves", "(member_id BIGINT, amount BIGINT)")
    copy_rows(session, "moves", ("member_id", "amount"), [(r.member_id, r.amount) for r in rows])
    post_from_select(session, batch.tenant_id, key, f"run_{kind}", memo, currency=currency,
                     legs_sql="""
      SELECT :source AS account, member_id, -amount AS amount FROM moves
      UNION ALL
      SELECT :account, member_id, amount FROM moves""",
                     params={"account": account, "source": source}, skip_if_empty=False)
    drop_temp_tables(session, "moves")
