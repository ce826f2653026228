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
    _temp(session, "line_items", "SELECT id AS item_id, member_id FROM run_items "
                                 "WHERE tenant_id = :t AND run_id = :r", p, "member_id")
    for kind, correction, table, live, amount in _SOURCES:
        names = {"kind": kind, "correction": correction, "table": table, "live": live,
                 "amount": amount, "unpaid": _UNPAID}
        _temp(session, "line_netted", _NETTED.format(**names), p, "ref_id")
        session.execute(text(_PAID.format(**names)), p)
        session.execute(text(_CORRECTIONS.format(**names)), p)
        _drop(session, "line_netted")
    _drop(session, "line_items")


def drop_lines(session: Session, tenant_id: int, run_id: int) -> None:
    """A cancelled plan paid nothing: what it tied is free for the next plan."""
    session.execute(text("DELETE FROM run_item_lines WHERE tenant_id = :t AND run_id = :r"),
                    {"t": tenant_id, "r": run_id})


def _temp(session: Session, name: str, select_sql: str, params: dict, key: str) -> None:
    """A temporary table, indexed on `key` and (PostgreSQL) analyzed: each statement below
    reaches it by index or hash, never by rescanning a table it believes empty."""
    pg = session.bind.dialect.name == "postgresql"
    _drop(session, name)
    session.execute(text(f"CREATE TEMP TABLE {name}{' ON COMMIT DROP' if pg else ''} AS "
                         f"{select_sql}"), params)
    session.execute(text(f"CREATE INDEX {name}_key ON {name} ({key})"))
    if pg:
        session.execute(text(f"ANALYZE {name}"))


def _drop(session: Session, name: str) -> None:
    schema = "pg_temp" if session.bind.dialect.name == "postgresql" else "temp"
    session.execute(text(f"DROP TABLE IF EXISTS {schema}.{name}"))


# What the items still standing have paid of each commission (or bonus) so far: its paid
# row plus earlier corrections, and the run that paid it.
_NETTED = """
  SELECT l.ref_id, max(CASE WHEN l.kind = '{kind}' THEN l.run_id END) AS paid_run,
         CAST(sum(l.amount) AS BIGINT) AS netted
  FROM run_item_lines l
  JOIN run_items paid ON paid.tenant_id = l.tenant_id AND paid.id = l.item_id
  WHERE l.tenant_id = :t AND l.run_id <> :r AND l.kind IN ('{kind}', '{correction}')
    AND paid.status NOT IN ({unpaid})
  GROUP BY l.ref_id"""

_PAID = """
  INSERT INTO run_item_lines (tenant_id, run_id, item_id, member_id, kind, ref_id, amount,
                              status, confirmed_on)
  SELECT :t, :r, i.item_id, i.member_id, '{kind}', s.id, s.{amount}, s.status, s.confirmed_on
  FROM line_items i
  JOIN {table} s ON s.tenant_id = :t AND s.member_id = i.member_id
  LEFT JOIN line_netted n ON n.ref_id = s.id
  WHERE s.status = '{live}' AND s.confirmed_on <= :cutoff AND s.{amount} <> 0
    AND n.paid_run IS NULL"""

_CORRECTIONS = """
  INSERT INTO run_item_lines (tenant_id, run_id, item_id, member_id, kind, ref_id, amount,
                              status, confirmed_on, earlier_run_id)
  SELECT :t, :r, i.item_id, i.member_id, '{correction}', n.ref_id,
         CASE WHEN s.status = '{live}' THEN s.{amount} ELSE 0 END - n.netted, s.status,
         s.confirmed_on, n.paid_run
  FROM line_netted n
  JOIN {table} s ON s.tenant_id = :t AND s.id = n.ref_id
  JOIN line_items i ON i.member_id = s.member_id
  WHERE n.paid_run IS NOT NULL
    AND CASE WHEN s.status = '{live}' THEN s.{amount} ELSE 0 END <> n.netted"""
