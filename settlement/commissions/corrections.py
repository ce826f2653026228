"""Corrections whose original was never seen (a CJ correction of a record outside the
window the portal fetched): kept aside, moving no money, until the original arrives.

A correction line (`original_txn` set) whose original is neither among the account's
commissions nor in the same report is stored with `awaiting_original`: it counts as
`unmatched` in the report, is listed with the code `unknown_original`, and its ledger effect
is nil (the lifecycle leaves such lines out of the report's entry, the hold and the
attaching of members). When a later report brings the original, `release_corrections`
posts the waiting corrections' effects as they stand then, in one entry, and clears the
flag. All set-based: one statement per step, whatever the number of lines.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.ledger.buckets import account_sql
from settlement.ledger.writer import post_from_select
from settlement.sql import drop_temp_tables, is_postgres, temp_table
from settlement.states import CommissionStatus

# The network's own name for the field that points at the original, for the line errors.
ORIGINAL_FIELD = {"cj": "originalActionId"}

# A report restating commissions we have: the new state and amounts of its `updated` lines.
# The rows to change are found by primary key from an array computed once (an InitPlan),
# never by a join the planner orders from its statistics of `commissions`: with statistics
# taken before a tenant's rows arrived (a new tenant, a first big day, autovacuum behind),
# it estimated one row for the tenant and looped over all of the tenant's commissions with
# a scan of the report's lines inside (53 s for one 50,000-line report under load,
# docs/PERFORMANCE.md "Payout day under load, 2026-12-06"). The lines come from `restated`,
# indexed on the commission id, so either join order costs one probe per restated line.
RESTATE_SQL = f"""
  UPDATE commissions SET status = a.status, sale_amount = a.sale,
    commission_amount = a.commission, sale_precise = a.sale_precise,
    commission_precise = a.commission_precise, share_amount = a.share,
    margin_amount = a.margin,
    order_id = COALESCE(a.order_id, commissions.order_id), as_of_us = :as_of,
    confirm_after = a.confirm_after, awaiting_original = a.awaiting,
    version = commissions.version + 1,
    confirmed_on = CASE WHEN a.status = '{CommissionStatus.CONFIRMED}'
                             AND commissions.status <> '{CommissionStatus.CONFIRMED}'
                        THEN :today ELSE commissions.confirmed_on END
  FROM restated a
  WHERE commissions.tenant_id = :t AND commissions.id = a.existing_id
    {{by_key}}"""
RESTATED_BY_KEY = "AND commissions.id = ANY (ARRAY(SELECT existing_id FROM restated))"
# A newer report that confirms what we have makes older reports stale from now on; the same
# primary-key look-up, and no join at all (only the report's moment is written).
CONFIRMED_SQL = """
  UPDATE commissions SET as_of_us = :as_of
  WHERE commissions.tenant_id = :t AND commissions.as_of_us < :as_of
    AND commissions.id {in_unchanged}"""
UNCHANGED_PG = "= ANY (ARRAY(SELECT existing_id FROM applied WHERE outcome = 'unchanged'))"
UNCHANGED_SQLITE = "IN (SELECT existing_id FROM applied WHERE outcome = 'unchanged')"


def unknown_originals_sql(fmt: str) -> str:
    """The originals the staged corrections point at that nobody has seen: not in this
    report, not among the account's commissions. Only CJ sends corrections: for the other
    formats the set is empty without reading the staged lines."""
    if fmt not in ORIGINAL_FIELD:
        return "SELECT CAST(NULL AS TEXT) AS original_txn WHERE 1 = 0"
    return """
      SELECT DISTINCT i.original_txn FROM incoming i
      WHERE i.original_txn IS NOT NULL
        AND i.original_txn NOT IN (SELECT transaction_id FROM incoming
                                   WHERE transaction_id IS NOT NULL)
        AND NOT EXISTS (SELECT 1 FROM commissions o
                        WHERE o.tenant_id = :t AND o.source = :source
                          AND o.transaction_id = i.original_txn)"""


def restate_existing(session: Session, params: dict, counts: dict[str, int]) -> None:
    """Write the report's `updated` lines over the commissions they restate, and move the
    `unchanged` ones to the report's moment; nothing at all for a report without either
    (most new reports)."""
    pg = is_postgres(session)
    if counts.get("updated"):
        temp_table(session, "restated", """
          SELECT existing_id, status, sale, commission, sale_precise, commission_precise,
                 share, margin, order_id, confirm_after, awaiting
          FROM applied WHERE outcome = 'updated'""", params)
        session.execute(text("CREATE INDEX restated_existing ON restated (existing_id)"))
        session.execute(text(RESTATE_SQL.format(by_key=RESTATED_BY_KEY if pg else "")),
                        params)
        drop_temp_tables(session, "restated")
    if counts.get("unchanged"):
        session.execute(text(CONFIRMED_SQL.format(
            in_unchanged=UNCHANGED_PG if pg else UNCHANGED_SQLITE)), params)


def record_unmatched(session: Session, params: dict, fmt: str, seq0: int) -> int:
    """List the kept-aside corrections of the report (not refusals: they are stored)."""
    field = ORIGINAL_FIELD.get(fmt, "original_transaction_id")
    return session.execute(text("""
      INSERT INTO report_errors (tenant_id, report_id, seq, line, field, code, message)
      SELECT :t, :r, :seq0 + row_number() OVER (ORDER BY line), line, :field,
             'unknown_original',
             'transaction ' || transaction_id || ' corrects ' || original_txn
             || ', which this account never reported: it is kept and moves no money '
             || 'until that transaction arrives'
      FROM applied WHERE awaiting AND outcome IN ('inserted', 'updated', 'unchanged')"""),
                           {**params, "seq0": seq0, "field": field}).rowcount


def release_corrections(session: Session, params: dict) -> int | None:
    """Post the effect of the waiting corrections whose original is now known; the entry
    id, if any money moved."""
    temp_table(session, "released", """
      SELECT c.id AS commission_id, c.member_id, c.status, c.share_amount AS share,
             c.commission_amount AS commission, c.margin_amount AS margin
      FROM commissions c
      WHERE c.tenant_id = :t AND c.source = :source AND c.awaiting_original
        AND EXISTS (SELECT 1 FROM commissions o
                    WHERE o.tenant_id = :t AND o.source = :source
                      AND o.transaction_id = c.original_transaction_id)""", params)
    first = session.execute(text("SELECT min(commission_id) FROM released")).scalar()
    if first is None:
        drop_temp_tables(session, "released")
        return None
    entry_id = _post_released(session, params, f"release:report:{params['r']}:{first}")
    session.execute(text("""
      INSERT INTO commission_events (tenant_id, commission_id, kind, report_id, line, entry_id,
        old_status, new_status, old_share, new_share, old_commission, new_commission)
      SELECT :t, commission_id, 'original_seen', :r, NULL, :e, status, status, share, share,
             commission, commission FROM released"""), {**params, "e": entry_id})
    session.execute(text("""
      UPDATE commissions SET awaiting_original = false, version = commissions.version + 1
      WHERE commissions.tenant_id = :t
        AND commissions.id IN (SELECT commission_id FROM released)"""), params)
    drop_temp_tables(session, "released")
    return entry_id


def _post_released(session: Session, params: dict, key: str) -> int | None:
    legs = f"""
      SELECT account, member_id, sum(amount) AS amount FROM (
        SELECT {account_sql("status", "member_id")} AS account, member_id, share AS amount
          FROM released
         WHERE status <> '{CommissionStatus.REVERSED}'
        UNION ALL
        SELECT 'network_receivable', NULL, -commission FROM released
         WHERE status <> '{CommissionStatus.REVERSED}'
        UNION ALL
        SELECT 'portal_margin', NULL, margin FROM released
         WHERE status <> '{CommissionStatus.REVERSED}'
      ) e GROUP BY account, member_id HAVING sum(amount) <> 0"""
    # The report as its tenant numbers it: memos are read in members' statements.
    number = session.execute(text("SELECT number FROM reports WHERE tenant_id = :t AND id = :r"),
                             params).scalar()
    return post_from_select(session, params["t"], key, "correction_released",
                            f"corrections whose original arrived (report {number})",
                            currency=params["cur"], legs_sql=legs, params=params)
