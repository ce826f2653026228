"""A member's money: balances and statement, straight from the ledger."""
from __future__ import annotations

from flask_smorest import Blueprint

from api.auth import current, requires
from api.database import db
from api.errors import Problem
from api.schemas.members import BalanceOut, StatementOut
from api.tenancy import tenant_policy
from settlement.catalog.service import member_by_external_id
from settlement.ledger.service import member_balances
from settlement.ledger.statement import statement_of
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
    money = lambda minor: format_amount(minor, digits)  # noqa: E731
    member = _member(external_id)
    found = statement_of(db(), current().tenant_id, member.id)
    entries = [{**entry, "changes": {k: money(v) for k, v in entry["changes"].items()}}
               for entry in found.entries]
    commissions = [{**c, "sale_amount": money(c["sale_amount"]),
                    "commission_amount": money(c["commission_amount"]),
                    "cash_back": money(c["cash_back"])} for c in found.commissions]
    payouts = [{**p, "amount": money(p["amount"])} for p in found.payouts]
    return {"currency": policy.currency, "balance": _balance(member.id, policy.currency, digits),
            "entries": entries, "commissions": commissions, "payouts": payouts}
