"""Holding periods: lines a network sends without a status (Rakuten Advertising's Signature
Orders report has none) confirm a number of days after their event date, unless a later
report reverses them first.

The days come from the tenant's policy (`networks.X.confirm_after_days`, 0 to 730), which a
retailer may override (`retailers.confirm_after_days`). A line arrives with the status
`unstated`; `resolve_holds` gives it its date (`confirm_after`) and its status at the
report's as-of date: confirmed if its hold is already over, pending otherwise. A return (a
negative line) is never held: holding it would let the sale it takes back be paid first.
Without a holding period an unstated line is pending, as the network left it.

Pending lines whose hold ends later are confirmed by `confirm_held`, which runs on the clock
(`settle commissions confirm-held`, the `confirm_held` job) and with every report of the
tenant, at the report's as-of date: one journal entry moves their shares from `pending` to
`available`, set-based.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from settlement.db import tenant_session
from settlement.ledger.buckets import account_sql
from settlement.ledger.writer import post_from_select
from settlement.models import Tenant
from settlement.reports.formats.base import UNSTATED
from settlement.sql import drop_temp_tables, plus_days, temp_table
from settlement.states import CommissionStatus
from settlement.tenants.service import policy_of


def resolve_holds(session: Session, tenant_id: int, fmt: str, network_days: int | None,
                  today: dt.date) -> None:
    """Give the staged lines without a status their holding date and their status at
    `today` (the report's as-of date in the tenant's time zone)."""
    if fmt == "generic":  # our own format always states a status: nothing to scan for
        return
    if not session.execute(text("SELECT 1 FROM incoming WHERE status = :u LIMIT 1"),
                           {"u": UNSTATED}).first():
        return
    override = """(SELECT r.confirm_after_days FROM retailer_network_ids n
                   JOIN retailers r ON r.tenant_id = n.tenant_id AND r.id = n.retailer_id
                   WHERE n.tenant_id = :t AND n.source = :fmt
                     AND n.external_id = incoming.retailer)"""
    days = f"coalesce({override}, :days)"
    until = plus_days(session, "event_date", days)
    session.execute(text(f"""
      UPDATE incoming SET confirm_after = CASE WHEN sale < 0 OR commission < 0 THEN NULL
                                               ELSE {until} END,
        status = CASE WHEN sale < 0 OR commission < 0 THEN '{CommissionStatus.CONFIRMED}'
                      WHEN {days} IS NULL THEN '{CommissionStatus.PENDING}'
                      WHEN {until} <= :today THEN '{CommissionStatus.CONFIRMED}'
                      ELSE '{CommissionStatus.PENDING}' END
      WHERE status = :u"""), {"t": tenant_id, "fmt": fmt, "days": network_days,
                              "today": today, "u": UNSTATED})


def confirm_held(session: Session, tenant_id: int, currency: str,
                 today: dt.date) -> tuple[int, int | None]:
    """Confirm the pending lines whose hold is over by `today`: (how many, the entry id if
    any money moved). Running it again the same day finds nothing left to do."""
    p = {"t": tenant_id, "today": today, "cur": currency}
    temp_table(session, "held", f"""
      SELECT id AS commission_id, member_id, share_amount AS share,
             commission_amount AS commission
      FROM commissions
      WHERE tenant_id = :t AND status = '{CommissionStatus.PENDING}' AND confirm_after <= :today
        AND NOT awaiting_original""", p)
    count, first = session.execute(text("SELECT count(*), min(commission_id) FROM held")).one()
    if count == 0:
        drop_temp_tables(session, "held")
        return 0, None
    entry_id = _post_confirmations(session, tenant_id, f"held:{today}:{first}", p)
    session.execute(text(f"""
      INSERT INTO commission_events (tenant_id, commission_id, kind, report_id, line, entry_id,
        old_status, new_status, old_share, new_share, old_commission, new_commission)
      SELECT :t, commission_id, 'hold_ended', NULL, NULL, :e, '{CommissionStatus.PENDING}',
             '{CommissionStatus.CONFIRMED}', share,
             share, commission, commission FROM held"""), {**p, "e": entry_id})
    session.execute(text(f"""
      UPDATE commissions SET status = '{CommissionStatus.CONFIRMED}', confirmed_on = :today,
        version = commissions.version + 1
      WHERE commissions.tenant_id = :t
        AND commissions.id IN (SELECT commission_id FROM held)"""), p)
    drop_temp_tables(session, "held")
    return count, entry_id


def _post_confirmations(session: Session, tenant_id: int, key: str, p: dict) -> int | None:
    """pending -> available for each member (or the unattributed accounts), one entry."""
    confirmed, pending = f"'{CommissionStatus.CONFIRMED}'", f"'{CommissionStatus.PENDING}'"
    legs = f"""
      SELECT account, member_id, sum(amount) AS amount FROM (
        SELECT {account_sql(confirmed, "member_id")} AS account, member_id,
               share AS amount FROM held
        UNION ALL
        SELECT {account_sql(pending, "member_id")}, member_id, -share FROM held
      ) e GROUP BY account, member_id HAVING sum(amount) <> 0"""
    return post_from_select(session, tenant_id, key, "hold_ended",
                            "holding period over: pending lines confirmed",
                            currency=p["cur"], legs_sql=legs, params=p)


def confirm_held_for_tenants(engine: Engine, slug: str | None = None,
                             on: dt.date | None = None) -> dict[str, int]:
    """The clock's pass: every tenant (or one), at today's date in its time zone (or `on`,
    for every tenant). Returns how many lines each tenant confirmed."""
    from settlement.referrals.service import evaluate_referrals

    now = dt.datetime.now(dt.timezone.utc)
    with tenant_session(engine) as session:
        query = select(Tenant.id, Tenant.slug)
        if slug is not None:
            query = query.where(Tenant.slug == slug)
        tenants = session.execute(query).all()
    confirmed: dict[str, int] = {}
    for tenant_id, tenant_slug in tenants:
        with tenant_session(engine, tenant_id) as session:
            policy = policy_of(session.get(Tenant, tenant_id))
            today = on or now.astimezone(ZoneInfo(policy.timezone)).date()
            confirmed[tenant_slug], entry_id = confirm_held(session, tenant_id,
                                                            policy.currency, today)
            if entry_id is not None:
                evaluate_referrals(session, tenant_id, policy, today=today,
                                   entry_ids=(entry_id,))
            session.commit()
    return confirmed
