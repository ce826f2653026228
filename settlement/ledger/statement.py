"""A member's statement: the ledger entries on their buckets, their commissions and their
payouts, newest first. Amounts in minor units and dates in ISO form: the caller formats
money in the tenant's currency."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.ledger.service import member_statement
from settlement.models import Commission, Report, Retailer, RunItem, SettlementRun

COMMISSIONS_SHOWN = 500
PAYOUTS_SHOWN = 100


@dataclass(frozen=True)
class Statement:
    entries: list[dict]  # changes: {bucket: minor units}
    commissions: list[dict]  # sale_amount, commission_amount, cash_back: minor units
    payouts: list[dict]  # amount: minor units


def statement_of(session: Session, tenant_id: int, member_id: int) -> Statement:
    return Statement(entries=member_statement(session, tenant_id, member_id),
                     commissions=_commissions(session, tenant_id, member_id),
                     payouts=_payouts(session, tenant_id, member_id))


def _commissions(session: Session, tenant_id: int, member_id: int) -> list[dict]:
    """Each with its retailer's slug and its report's number (the tenant's own ids)."""
    rows = session.execute(
        select(Commission, Retailer.slug, Report.number).join(
            Retailer, (Retailer.tenant_id == Commission.tenant_id)
            & (Retailer.id == Commission.retailer_id))
        .join(Report, (Report.tenant_id == Commission.tenant_id)
              & (Report.id == Commission.report_id))
        .where(Commission.tenant_id == tenant_id, Commission.member_id == member_id)
        .order_by(Commission.event_date.desc(), Commission.id.desc())
        .limit(COMMISSIONS_SHOWN)).all()
    return [{
        "transaction_id": c.transaction_id, "source": c.source, "order_id": c.order_id,
        "retailer": slug, "category": c.category, "event_date": c.event_date.isoformat(),
        "status": c.status, "sale_amount": c.sale_amount,
        "commission_amount": c.commission_amount, "cash_back": c.share_amount,
        "report_id": report_number, "line": c.line, "entry_id": c.entry_id}
        for c, slug, report_number in rows]


def _payouts(session: Session, tenant_id: int, member_id: int) -> list[dict]:
    """Each named by its run's number, with the reason of a failure."""
    rows = session.execute(
        select(RunItem, SettlementRun).join(
            SettlementRun, (SettlementRun.tenant_id == RunItem.tenant_id)
            & (SettlementRun.id == RunItem.run_id))
        .where(RunItem.tenant_id == tenant_id, RunItem.member_id == member_id)
        .order_by(RunItem.id.desc()).limit(PAYOUTS_SHOWN)).all()
    return [{
        "run_id": run.number, "payout_date": run.payout_date.isoformat(),
        "method": item.method, "amount": item.amount, "points": item.points,
        "status": item.status, "reason": item.failure_reason} for item, run in rows]
