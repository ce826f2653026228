"""Runs: the list, planning, a run's plan (totals by method, skips by reason and the
skipped members), approval of that exact plan by another principal, live progress,
batches, outcomes and failures, the run report and the payout files, cancel."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import (Response, current_app, flash, g, jsonify, redirect, render_template,
                   request, send_from_directory, url_for)
from sqlalchemy import select

from api.auth import record
from api.console import blp, tenant_view
from api.console.paging import PAGE_SIZE, after_arg
from api.console.session import page
from api.database import db
from api.schemas.lists import RUN_STATUSES
from settlement import lists
from settlement.models import Member
from settlement.runs import plan as runs
from settlement.runs.batches import batch_views
from settlement.runs.report import report_csv_rows, skipped_members
from settlement.states import ItemStatus, RunStatus
from workers.queue import enqueue, run_job_id

LIVE = (RunStatus.APPROVED, RunStatus.EXECUTING)
OUTCOME_STATUSES = (ItemStatus.FAILED, ItemStatus.RETURNED)


def _run_or_none(number: int):
    """The tenant's run of that number (pages name runs as the API does), or None."""
    try:
        tenant_id = g.principal.tenant_id
        return runs.get_run(db(), tenant_id, runs.run_id_of(db(), tenant_id, number))
    except runs.RunError:
        return None


def _not_found(run_id: int):
    return render_template("console/error.html", status=404,
                           message=f"No settlement run {run_id}."), 404


@blp.route("/runs")
@page("reader")
def runs_list():
    status = request.args.get("status") or None
    found = lists.runs_page(db(), g.principal.tenant_id, status=status,
                            after=after_arg(), limit=PAGE_SIZE)
    return render_template("console/runs.html", runs=found.rows, next_after=found.next_after,
                           status=status, statuses=RUN_STATUSES)


@blp.route("/runs", methods=["POST"])
@page("operator")
def runs_plan():
    try:
        payout_date = dt.date.fromisoformat(request.form.get("payout_date", ""))
    except ValueError:
        flash("Give the payout date as YYYY-MM-DD.", "error")
        return redirect(url_for("console.runs_list"))
    try:
        run = runs.plan_run(db(), g.principal.tenant_id, payout_date, g.principal.name)
    except runs.RunError as exc:
        db().rollback()
        flash(f"Not planned: {exc.message}", "error")
        return redirect(url_for("console.runs_list"))
    record("run.planned", "settlement_run", run.number, {"payout_date": payout_date})
    db().commit()
    return redirect(url_for("console.run_show", run_id=run.number))


def _member_ids(member_ids: set[int]) -> dict[int, str]:
    if not member_ids:
        return {}
    return dict(db().execute(select(Member.id, Member.external_id).where(
        Member.tenant_id == g.principal.tenant_id, Member.id.in_(sorted(member_ids)))).all())


def _outbox(run) -> Path:
    tenant, _ = tenant_view()
    # Resolved against the working directory, as the batch jobs write it (Flask would
    # take a relative folder from the package).
    return (Path(current_app.config["SETTLE"].outbox_dir) / tenant.slug
            / f"run-{run.id}").resolve()


def _payout_files(run) -> list[str]:
    folder = _outbox(run)
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def _progress(run) -> dict:
    totals = runs.run_totals(db(), run.tenant_id, run.id)
    return {"status": run.status, "progress": totals["progress"],
            "batches": batch_views(db(), run.tenant_id, run.id)}


@blp.route("/runs/<int:run_id>")
@page("reader")
def run_show(run_id):
    run = _run_or_none(run_id)
    if run is None:
        return _not_found(run_id)
    run_id, tenant_id = run.id, g.principal.tenant_id
    outcomes = [item for status in OUTCOME_STATUSES for item in runs.items_page(
        db(), tenant_id, run_id, status=status, method=None, after=0, limit=PAGE_SIZE)]
    principal = g.principal
    may_approve = (run.status == RunStatus.PLANNED and principal.may("approver")
                   and principal.name != run.planned_by)
    return render_template(
        "console/run.html", run=run, totals=runs.run_totals(db(), tenant_id, run_id),
        batches=batch_views(db(), tenant_id, run_id), outcomes=outcomes,
        members=_member_ids({i.member_id for i in outcomes}), files=_payout_files(run),
        may_approve=may_approve, planner_is_me=principal.name == run.planned_by,
        may_cancel=run.status == RunStatus.PLANNED and principal.may("operator"), live=LIVE)


@blp.route("/runs/<int:run_id>/progress.json")
@page("reader")
def run_progress(run_id):
    run = _run_or_none(run_id)
    if run is None:
        return jsonify({"error": "not found"}), 404
    return jsonify(_progress(run))


@blp.route("/runs/<int:run_id>/approve", methods=["POST"])
@page("approver")
def run_approve(run_id):
    tenant_id, number = g.principal.tenant_id, run_id
    try:
        run_id = runs.run_id_of(db(), tenant_id, number)
        run = runs.approve_run(db(), tenant_id, run_id, g.principal.name,
                               request.form.get("plan_hash") or None)
    except runs.RunError as exc:
        db().rollback()
        flash(f"Not approved: {exc.message}", "error")
        return redirect(url_for("console.run_show", run_id=number))
    record("run.approved", "settlement_run", number, {"plan_hash": run.plan_hash})
    db().commit()
    settings = current_app.config["SETTLE"]
    try:
        enqueue("execute_run", tenant_id, run_id, settings=settings,
                job_id=run_job_id(settings, tenant_id, run_id))
    except Exception:  # noqa: BLE001 - the approval stands; the watchdog resumes it
        current_app.logger.exception("run %s: execution after approval failed", number)
        flash("Approved; execution stopped part-way and will be resumed.", "error")
    else:
        flash(f"Approved plan {run.plan_hash[:12]}…; execution started.", "ok")
    return redirect(url_for("console.run_show", run_id=number))


@blp.route("/runs/<int:run_id>/cancel", methods=["POST"])
@page("operator")
def run_cancel(run_id):
    tenant_id, number = g.principal.tenant_id, run_id
    try:
        runs.cancel_run(db(), tenant_id, runs.run_id_of(db(), tenant_id, number),
                        g.principal.name)
    except runs.RunError as exc:
        db().rollback()
        flash(f"Not cancelled: {exc.message}", "error")
        return redirect(url_for("console.run_show", run_id=number))
    record("run.cancelled", "settlement_run", number)
    db().commit()
    flash("Run cancelled.", "ok")
    return redirect(url_for("console.run_show", run_id=number))


@blp.route("/runs/<int:run_id>/skipped")
@page("reader")
def run_skipped(run_id):
    run = _run_or_none(run_id)
    if run is None:
        return _not_found(run_id)
    reason = request.args.get("reason") or None
    if reason is not None and reason not in runs.SKIP_REASONS:
        reason = None
    rows = skipped_members(db(), g.principal.tenant_id, run.id, reason=reason,
                           after=after_arg() or 0, limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return render_template("console/skipped.html", run=run, rows=rows, reason=reason,
                           reasons=runs.SKIP_REASONS,
                           next_after=rows[-1]["member_id"] if more else None)


@blp.route("/runs/<int:run_id>/report.csv")
@page("reader")
def run_report(run_id):
    run = _run_or_none(run_id)
    if run is None:
        return _not_found(run_id)
    _, policy = tenant_view()
    body = "".join(report_csv_rows(db(), g.principal.tenant_id, run, policy.minor_digits))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename=run-{run_id}-report.csv"})


@blp.route("/runs/<int:run_id>/files/<name>")
@page("reader")
def run_file(run_id, name):
    """A payout file of the run (check file, positive pay, partner files), by the name the
    run page lists: nothing outside the run's own folder."""
    run = _run_or_none(run_id)
    if run is None or name not in _payout_files(run):
        return _not_found(run_id)
    return send_from_directory(_outbox(run), name, as_attachment=True)
