from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from api.auth import current, requires
from api.database import db, engine
from api.errors import problem_response
from settlement.ledger.check import last_check
from settlement.readiness import readiness

blp = Blueprint("health", __name__, description="Liveness and readiness")


class HealthOut(Schema):
    status = fields.String(metadata={"example": "ok"})


class ReadyOut(Schema):
    status = fields.String(metadata={"example": "ready"})
    checks = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "database, migrations, redis: ok, not used, or why not"})


@blp.route("/health")
@blp.doc(security=[])
@blp.response(200, HealthOut)
def health():
    """Liveness: the process answers. Touches nothing else, so a database outage does not
    get every web process restarted; see /v1/ready."""
    return {"status": "ok"}


@blp.route("/ready")
@blp.doc(security=[])
@blp.response(200, ReadyOut)
@blp.alt_response(503, description="not ready: problem+json with the same `checks`")
def ready():
    """Readiness for a load balancer: the database answers, its migrations are at this
    code's head, and Redis answers when jobs go to rq."""
    found = readiness(engine(), current_app.config["SETTLE"].redis_url)
    if not found["ready"]:
        # A Response, so the 200 schema does not try to dump the problem.
        return current_app.response_class(*problem_response(
            503, "Service Unavailable", "a dependency is not ready", checks=found["checks"]))
    return {"status": "ready", "checks": found["checks"]}


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
