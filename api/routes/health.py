from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from api.auth import current, requires
from api.database import db
from settlement.ledger.check import last_check

blp = Blueprint("health", __name__, description="Liveness and readiness")


@blp.route("/health")
@blp.doc(security=[])
def health():
    db().execute(text("SELECT 1"))
    return {"status": "ok"}


class MemberMismatchOut(Schema):
    member = fields.String()
    total = fields.List(fields.Integer(), metadata={
        "description": "[from postings, expected] in minor units"})
    pending = fields.List(fields.Integer())
    paid = fields.List(fields.Integer())


class LedgerHealthOut(Schema):
    checked_at = fields.String(allow_none=True, metadata={
        "description": "when the last check ran (null: never yet)"})
    ok = fields.Boolean(allow_none=True)
    unbalanced_entries = fields.List(fields.Dict())
    tenant_totals = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "the accounts' balances, when they do not sum to zero"})
    member_mismatches = fields.List(fields.Nested(MemberMismatchOut))
    member_mismatch_count = fields.Integer()


@blp.route("/health/ledger")
@requires("admin")
@blp.response(200, LedgerHealthOut)
def ledger_health():
    """The last ledger check of the caller's tenant (`settle ledger check`, the daily job
    and the one after each completed run): entries that do not balance, accounts that do
    not sum to zero, members whose postings disagree with their commissions, bonuses and
    payouts. Minor units."""
    found = last_check(db(), current().tenant_id)
    return found or {"checked_at": None, "ok": None, "unbalanced_entries": [],
                     "tenant_totals": {}, "member_mismatches": [],
                     "member_mismatch_count": 0}
