"""What each item of a run pays, frozen at planning in run_item_lines.

Paid money is never rewritten, so neither is a run's report: the item amount is frozen at
planning, and so are the rows that explain it:
- `commission`: a confirmed commission of the member (confirmed on or before the cut-off)
  that no item still standing has paid, at its share then;
- `referral_bonus`: an earned referral bonus, likewise;
- `commission_correction` / `bonus_correction`: one that an earlier run paid and that
  changed since (reversed, voided, amended), for the difference not netted yet, naming
  that earlier run. A member skipped now carries it to the run that pays them next.
What the rows do not explain (balance carried over, points rounding) is the report's
`adjustment`. An item that failed (or whose money came back) paid nothing: its rows do not
count as paid, and a later run ties the same commissions again.

A few set-based statements per run, however many members: no statement per item.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.models import SettlementRun

# Item statuses whose money went back to the member: what they tied is unpaid again.
UNPAID_ITEM_STATUSES = ("failed", "returned")
_UNPAID = ", ".join(f"'{s}'" for s in UNPAID_ITEM_STATUSES)

# (paid kind, correction kind, table, its live status, its amount column)
_SOURCES = (("commission", "commission_correction", "commissions", "confirmed", "share_amount"),
            ("referral_bonus", "bonus_correction", "referral_bonuses", "earned", "amount"))


def freeze_lines(session: Session, run: SettlementRun) -> None:
    p = {"t": run.tenant_id, "r": run.id, "cutoff": run.cutoff_date}
    for kind, correction, table, live, amount in _SOURCES:
        session.execute(text(_PAID.format(kind=kind, table=table, live=live, amount=amount,
                                          unpaid=_UNPAID)), p)
        session.execute(text(_CORRECTIONS.format(kind=kind, correction=correction, table=table,
                                                 live=live, amount=amount, unpaid=_UNPAID)), p)


def drop_lines(session: Session, tenant_id: int, run_id: int) -> None:
    """A cancelled plan paid nothing: what it tied is free for the next plan."""
    session.execute(text("DELETE FROM run_item_lines WHERE tenant_id = :t AND run_id = :r"),
                    {"t": tenant_id, "r": run_id})


_PAID = """
  INSERT INTO run_item_lines (tenant_id, run_id, item_id, member_id, kind, ref_id, amount,
                              status, confirmed_on)
  SELECT i.tenant_id, i.run_id, i.id, i.member_id, '{kind}', s.id, s.{amount}, s.status,
         s.confirmed_on
  FROM run_items i
  JOIN {table} s ON s.tenant_id = i.tenant_id AND s.member_id = i.member_id
  WHERE i.tenant_id = :t AND i.run_id = :r AND s.status = '{live}'
    AND s.confirmed_on <= :cutoff AND s.{amount} <> 0
    AND NOT EXISTS (
      SELECT 1 FROM run_item_lines l
      JOIN run_items paid ON paid.tenant_id = l.tenant_id AND paid.id = l.item_id
      WHERE l.tenant_id = :t AND l.ref_id = s.id AND l.kind = '{kind}'
        AND paid.status NOT IN ({unpaid}))"""

# netted: what the items still standing have paid of each source so far (its paid row
# plus earlier corrections); the difference from what it is worth now is this run's row.
_CORRECTIONS = """
  INSERT INTO run_item_lines (tenant_id, run_id, item_id, member_id, kind, ref_id, amount,
                              status, confirmed_on, earlier_run_id)
  SELECT i.tenant_id, i.run_id, i.id, i.member_id, '{correction}', n.ref_id,
         CASE WHEN s.status = '{live}' THEN s.{amount} ELSE 0 END - n.netted, s.status,
         s.confirmed_on, n.paid_run
  FROM (SELECT l.ref_id, max(CASE WHEN l.kind = '{kind}' THEN l.run_id END) AS paid_run,
               CAST(sum(l.amount) AS BIGINT) AS netted
        FROM run_item_lines l
        JOIN run_items paid ON paid.tenant_id = l.tenant_id AND paid.id = l.item_id
        WHERE l.tenant_id = :t AND l.run_id <> :r AND l.kind IN ('{kind}', '{correction}')
          AND paid.status NOT IN ({unpaid})
        GROUP BY l.ref_id) n
  JOIN {table} s ON s.tenant_id = :t AND s.id = n.ref_id
  JOIN run_items i ON i.tenant_id = :t AND i.run_id = :r AND i.member_id = s.member_id
  WHERE n.paid_run IS NOT NULL
    AND CASE WHEN s.status = '{live}' THEN s.{amount} ELSE 0 END <> n.netted"""
