"""A member's money: balances and statement, straight from the ledger."""
from __future__ import annotations

from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import current, requires
from api.database import db
from api.errors import Problem
from api.schemas import BalanceOut, StatementOut
from api.tenancy import tenant_policy
from settlement.catalog.service import member_by_external_id
from settlement.ledger.service import member_balances, member_statement
from settlement.models import Commission, Report, Retailer, RunItem, SettlementRun
from settlement.money import format_amount

blp = Blueprint("members", __name__, description="Member balances and statements")


def _member(external_id: str):
    member = member_by_external_id(db(), current().tenant_id, external_id)
    if member is None:
        raise Problem(404, "Not Found", f"no member {external_id}")
    return member


def _balance(member_id: int, currency: str, digits: int) -> dict:
    balances = member_balances(db(), current().tenant_id, member_id)
    return {"currency": currency, **{bucket: format_amount(balances[bucket], digits)
                                     for bucket in ("pending", "available", "reserved", "paid")}}


@blp.route("/members/<external_id>/balance")
@requires("reader")
@blp.response(200, BalanceOut)
def balance(external_id):
    policy = tenant_policy()
    member_id = _member(external_id).id
    out = _balance(member_id, policy.currency, policy.minor_digits)
    if policy.exits or policy.points.expiry:
        from api.routes.exchanges import points_balance
        out["points"] = points_balance(member_id, policy)
    return out


@blp.route("/members/<external_id>/statement")
@requires("reader")
@blp.response(200, StatementOut)
def statement(external_id):
    policy = tenant_policy()
    digits = policy.minor_digits
    member = _member(external_id)
    tenant_id = current().tenant_id
    entries = member_statement(db(), tenant_id, member.id)
    for entry in entries:
        entry["changes"] = {k: format_amount(v, digits) for k, v in entry["changes"].items()}
    rows = db().execute(
        select(Commission, Retailer.slug, Report.number).join(
            Retailer, (Retailer.tenant_id == Commission.tenant_id)
            & (Retailer.id == Commission.retailer_id))
        .join(Report, (Report.tenant_id == Commission.tenant_id)
              & (Report.id == Commission.report_id))
        .where(Commission.tenant_id == tenant_id, Commission.member_id == member.id)
        .order_by(Commission.event_date.desc(), Commission.id.desc()).limit(500)).all()
    commissions = [{
        "transaction_id": c.transaction_id, "source": c.source, "order_id": c.order_id,
        "retailer": slug, "category": c.category, "event_date": c.event_date.isoformat(),
        "status": c.status, "sale_amount": format_amount(c.sale_amount, digits),
        "commission_amount": format_amount(c.commission_amount, digits),
        "cash_back": format_amount(c.share_amount, digits), "report_id": report_number,
        "line": c.line, "entry_id": c.entry_id} for c, slug, report_number in rows]
    payouts = [{
        "run_id": run.number, "payout_date": run.payout_date.isoformat(),
        "method": item.method, "amount": format_amount(item.amount, digits),
        "points": item.points, "status": item.status, "reason": item.failure_reason}
        for item, run in db().execute(
            select(RunItem, SettlementRun).join(
                SettlementRun, (SettlementRun.tenant_id == RunItem.tenant_id)
                & (SettlementRun.id == RunItem.run_id))
            .where(RunItem.tenant_id == tenant_id, RunItem.member_id == member.id)
            .order_by(RunItem.id.desc()).limit(100)).all()]
    return {"currency": policy.currency, "balance": _balance(member.id, policy.currency, digits),
            "entries": entries, "commissions": commissions, "payouts": payouts}
