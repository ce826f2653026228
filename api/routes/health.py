from flask import current_app
from flask_smorest import Blueprint

from api.auth import current, requires
from api.database import db, engine
from api.errors import problem_response
from api.schemas.health import HealthOut, LedgerHealthOut, ReadyOut
from settlement.ledger.check import last_check
from settlement.readiness import readiness

blp = Blueprint("health", __name__, description="Liveness and readiness")


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
