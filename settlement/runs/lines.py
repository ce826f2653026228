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
from settlement.sql import drop_temp_tables, temp_table
from settlement.states import BonusStatus, CommissionStatus, ItemStatus, sql_in

# Item statuses whose money went back to the member: what they tied is unpaid again.
UNPAID_ITEM_STATUSES = (ItemStatus.FAILED, ItemStatus.RETURNED)

# (paid kind, correction kind, table, its live status, its amount column)
_SOURCES = (("commission", "commission_correction", "commissions", CommissionStatus.CONFIRMED,
             "share_amount"),
            ("referral_bonus", "bonus_correction", "referral_bonuses", BonusStatus.EARNED,
             "amount"))


def freeze_lines(session: Session, run: SettlementRun) -> None:
    p = {"t": run.tenant_id, "r": run.id, "cutoff": run.cutoff_date}
    _temp(session, "line_items", "SELECT id AS item_id, member_id FROM run_items "
                                 "WHERE tenant_id = :t AND run_id = :r", p, "member_id")
    _temp(session, "line_unpaid", f"SELECT id AS item_id FROM run_items WHERE tenant_id = :t "
                                  f"AND status IN {sql_in(*UNPAID_ITEM_STATUSES)}", p,
          "item_id")
    for kind, correction, table, live, amount in _SOURCES:
        names = {"kind": kind, "correction": correction, "table": table, "live": live,
                 "amount": amount}
        paid_before = _temp(session, "line_netted", _NETTED.format(**names), p, "ref_id")
        # One pass over the commissions (or bonuses) of the members paid now: the ones
        # nothing paid yet, and the ones paid before whose worth changed since.
        session.execute(text((_LINES if paid_before else _FIRST_LINES).format(**names)), p)
        drop_temp_tables(session, "line_netted")
    drop_temp_tables(session, "line_unpaid", "line_items")


def drop_lines(session: Session, tenant_id: int, run_id: int) -> None:
    """A cancelled plan paid nothing: what it tied is free for the next plan."""
    session.execute(text("DELETE FROM run_item_lines WHERE tenant_id = :t AND run_id = :r"),
                    {"t": tenant_id, "r": run_id})


def _temp(session: Session, name: str, select_sql: str, params: dict, key: str) -> bool:
    """A temporary table, indexed on `key` and (PostgreSQL) analyzed: each statement below
    reaches it by index or hash, never by rescanning a table it believes empty. Returns
    whether it has rows."""
    temp_table(session, name, select_sql, params, indexes={f"{name}_key": key})
    return session.execute(text(f"SELECT 1 FROM {name} LIMIT 1")).first() is not None


# What the items still standing have paid of each commission (or bonus) so far: its paid
# row plus earlier corrections, and the run that paid it. One scan of the lines.
_NETTED = """
  SELECT l.ref_id, max(CASE WHEN l.kind = '{kind}' THEN l.run_id END) AS paid_run,
         CAST(sum(l.amount) AS BIGINT) AS netted
  FROM run_item_lines l
  WHERE l.tenant_id = :t AND l.run_id <> :r AND l.kind IN ('{kind}', '{correction}')
    AND NOT EXISTS (SELECT 1 FROM line_unpaid u WHERE u.item_id = l.item_id)
  GROUP BY l.ref_id
  HAVING max(CASE WHEN l.kind = '{kind}' THEN l.run_id END) IS NOT NULL"""

_INSERT = """
  INSERT INTO run_item_lines (tenant_id, run_id, item_id, member_id, kind, ref_id, amount,
                              status, confirmed_on, earlier_run_id)"""

_FIRST_LINES = _INSERT + """
  SELECT :t, :r, i.item_id, i.member_id, '{kind}', s.id, s.{amount}, s.status,
         s.confirmed_on, NULL
  FROM line_items i
  JOIN {table} s ON s.tenant_id = :t AND s.member_id = i.member_id
  WHERE s.status = '{live}' AND s.confirmed_on <= :cutoff AND s.{amount} <> 0"""

_LINES = _INSERT + """
  SELECT :t, :r, item_id, member_id,
         CASE WHEN paid_run IS NULL THEN '{kind}' ELSE '{correction}' END, ref_id,
         CASE WHEN paid_run IS NULL THEN worth ELSE worth - netted END, status, confirmed_on,
         paid_run
  FROM (SELECT i.item_id, i.member_id, s.id AS ref_id, s.status, s.confirmed_on,
               CASE WHEN s.status = '{live}' THEN s.{amount} ELSE 0 END AS worth,
               n.paid_run, n.netted
        FROM line_items i
        JOIN {table} s ON s.tenant_id = :t AND s.member_id = i.member_id
        LEFT JOIN line_netted n ON n.ref_id = s.id) c
  WHERE (paid_run IS NULL AND status = '{live}' AND confirmed_on <= :cutoff AND worth <> 0)
     OR (paid_run IS NOT NULL AND worth <> netted)"""
