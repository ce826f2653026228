"""Settlement runs: plan (operator), approve (another principal, approver), follow, report."""
from __future__ import annotations

import logging

from flask import Response, current_app
from flask_smorest import Blueprint

from api.auth import current, record, requires
from api.database import db
from api.paging import decode_name_cursor, encode_cursor
from api.schemas.runs import ApproveIn, ItemsQuery, RunIn, SkippedPageOut, SkippedQuery
from api.tenancy import tenant_policy
from settlement.catalog.service import member_by_external_id
from settlement.exchanges.expiry import external_ids
from settlement.money import format_amount
from settlement.runs import plan as runs
from settlement.runs.batches import batch_views
from settlement.runs.report import report_csv_rows, report_json, skipped_members
from settlement.states import RunStatus
from workers.queue import enqueue, run_job_id

blp = Blueprint("runs", __name__, description="Settlement runs")
log = logging.getLogger("settle.api.runs")


def _run_id(number: int) -> int:
    """Path ids are the tenant's run numbers: the internal id, or the 404 problem."""
    return runs.run_id_of(db(), current().tenant_id, number)


def run_view(run) -> dict:
    digits = tenant_policy().minor_digits
    money = lambda v: format_amount(v, digits)  # noqa: E731
    totals = runs.run_totals(db(), run.tenant_id, run.id)
    return {
        "id": run.number, "status": run.status, "payout_date": run.payout_date.isoformat(),
        "cutoff_date": run.cutoff_date.isoformat(), "currency": run.currency,
        "plan_hash": run.plan_hash, "planned_by": run.planned_by,
        "approved_by": run.approved_by,
        "totals": {"members": totals["members"], "amount": money(totals["amount"]),
                   "by_method": {m: {"members": v["members"], "amount": money(v["amount"]),
                                     "points": v["points"]}
                                 for m, v in totals["by_method"].items()}},
        "skipped": {r: {"members": v["members"], "amount": money(v["amount"])}
                    for r, v in totals["skipped"].items()},
        "progress": totals["progress"],
        # Each batch as the provider and our jobs left it: what to look at when a run
        # does not finish (a provider id, an error, attempts).
        "batches": [{**b, "amount": money(b["amount"])}
                    for b in batch_views(db(), run.tenant_id, run.id)],
    }


@blp.route("/settlement-runs", methods=["POST"])
@requires("operator")
@blp.arguments(RunIn)
def plan(body):
    """Plan the run of a payout date: frozen amounts, methods and points, and every skipped
    member with the reason."""
    try:
        run = runs.plan_run(db(), current().tenant_id, body["payout_date"], current().name)
    except runs.RunError:
        db().rollback()
        raise
    record("run.planned", "settlement_run", run.number, {"payout_date": body["payout_date"]})
    db().commit()
    return run_view(run), 201


@blp.route("/settlement-runs/<int:run_id>", methods=["GET"])
@requires("reader")
def show(run_id):
    run_id = _run_id(run_id)
    return run_view(runs.get_run(db(), current().tenant_id, run_id))


@blp.route("/settlement-runs/<int:run_id>/approve", methods=["POST"])
@requires("approver")
@blp.arguments(ApproveIn)
def approve(body, run_id):
    """Approve this exact plan (four eyes: not its planner); execution starts."""
    number, run_id = run_id, _run_id(run_id)
    try:
        run = runs.approve_run(db(), current().tenant_id, run_id, current().name,
                               body.get("plan_hash"))
    except runs.RunError:
        db().rollback()
        raise
    record("run.approved", "settlement_run", number, {"plan_hash": run.plan_hash})
    db().commit()
    settings = current_app.config["SETTLE"]
    try:
        enqueue("execute_run", current().tenant_id, run_id, settings=settings,
                job_id=run_job_id(settings, current().tenant_id, run_id))
    except Exception:  # noqa: BLE001 - the approval stands; execution resumes later
        # In-process execution failed part-way (a provider down, an outbox not writable):
        # the approval is committed and every step is resumable, so this is still a 202;
        # `settle run execute` (or the next execute job) carries on where it stopped.
        log.exception("run %s: execution after approval failed; resume it", number)
    db().expire_all()
    return run_view(runs.get_run(db(), current().tenant_id, run_id)), 202


@blp.route("/settlement-runs/<int:run_id>/resume", methods=["POST"])
@requires("operator")
def resume(run_id):
    """Work an approved or executing run's open batches again (what the watchdog does every
    minute): a pending batch is submitted, one whose outcome is unknown is asked about,
    one the provider has is polled. Safe to call at any time, twice."""
    number, run_id = run_id, _run_id(run_id)
    tenant_id = current().tenant_id
    run = runs.get_run(db(), tenant_id, run_id)
    if run.status not in (RunStatus.APPROVED, RunStatus.EXECUTING):
        raise runs.RunError("not_executing", f"run {number} is {run.status}: nothing to resume")
    record("run.resumed", "settlement_run", number)
    db().commit()
    settings = current_app.config["SETTLE"]
    try:
        enqueue("execute_run", tenant_id, run_id, settings=settings,
                job_id=run_job_id(settings, tenant_id, run_id))
    except Exception:  # noqa: BLE001 - in-process: what failed stays open for the next resume
        log.exception("run %s: resume failed part-way", number)
    db().expire_all()
    return run_view(runs.get_run(db(), tenant_id, run_id)), 202


@blp.route("/settlement-runs/<int:run_id>/cancel", methods=["POST"])
@requires("operator")
def cancel(run_id):
    number, run_id = run_id, _run_id(run_id)
    try:
        runs.cancel_run(db(), current().tenant_id, run_id, current().name)
    except runs.RunError:
        db().rollback()
        raise
    record("run.cancelled", "settlement_run", number)
    db().commit()
    return run_view(runs.get_run(db(), current().tenant_id, run_id))


def _member_after(raw: str | None) -> int:
    """Item and skip pages go in member order; a cursor names the last member of a page
    by external id (internal ids are never shown). 0: from the start."""
    tenant_id = current().tenant_id
    return decode_name_cursor(raw, lambda external_id: getattr(
        member_by_external_id(db(), tenant_id, external_id), "id", None)) or 0


@blp.route("/settlement-runs/<int:run_id>/items", methods=["GET"])
@requires("reader")
@blp.arguments(ItemsQuery, location="query")
def items(query, run_id):
    run_id = _run_id(run_id)
    tenant_id = current().tenant_id
    runs.get_run(db(), tenant_id, run_id)
    digits = tenant_policy().minor_digits
    page = runs.items_page(db(), tenant_id, run_id, status=query["status"],
                           method=query["method"], after=_member_after(query["cursor"]),
                           limit=query["limit"] + 1)
    more = len(page) > query["limit"]
    page = page[:query["limit"]]
    names = external_ids(db(), tenant_id, [i.member_id for i in page])
    # An item is named by its member (a run pays a member once): no internal id is shown.
    return {"items": [{"member": names[i.member_id], "method": i.method,
                       "amount": format_amount(i.amount, digits), "points": i.points,
                       "status": i.status, "provider_item_id": i.provider_item_id,
                       "provider_status": i.provider_status,
                       "failure_reason": i.failure_reason} for i in page],
            "next_cursor": encode_cursor(names[page[-1].member_id]) if more else None}


@blp.route("/settlement-runs/<int:run_id>/report.csv", methods=["GET"])
@requires("reader")
def report_csv(run_id):
    number, run_id = run_id, _run_id(run_id)
    tenant_id = current().tenant_id
    run = runs.get_run(db(), tenant_id, run_id)
    body = "".join(report_csv_rows(db(), tenant_id, run, tenant_policy().minor_digits))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename=run-{number}-report.csv"})


@blp.route("/settlement-runs/<int:run_id>/report.json", methods=["GET"])
@requires("reader")
def report_json_view(run_id):
    run_id = _run_id(run_id)
    tenant_id = current().tenant_id
    run = runs.get_run(db(), tenant_id, run_id)
    return report_json(db(), tenant_id, run, tenant_policy().minor_digits)


@blp.route("/settlement-runs/<int:run_id>/skipped", methods=["GET"])
@requires("reader")
@blp.arguments(SkippedQuery, location="query")
@blp.response(200, SkippedPageOut)
def skipped(query, run_id):
    """The members the plan did not pay, in member order, each with the reason (one of
    the plan's `skipped` keys) and the amount that stays in their balance."""
    run_id = _run_id(run_id)
    tenant_id = current().tenant_id
    runs.get_run(db(), tenant_id, run_id)
    digits = tenant_policy().minor_digits
    page = skipped_members(db(), tenant_id, run_id, reason=query["reason"],
                           after=_member_after(query["cursor"]), limit=query["limit"] + 1)
    more = len(page) > query["limit"]
    page = page[:query["limit"]]
    return {"skipped": [{"member": s["member"], "method": s["method"], "reason": s["reason"],
                         "amount": format_amount(s["amount"], digits)} for s in page],
            "next_cursor": encode_cursor(page[-1]["member"]) if more else None}
