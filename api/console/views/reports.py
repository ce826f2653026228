"""Reports: today's uploads (or all) with status and counts, a report's line errors, and
upload for an uploader key."""
from __future__ import annotations

import datetime as dt

from flask import current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from api.auth import record
from api.console import blp, tenant_view
from api.console import format as fmt
from api.console.session import page
from api.console.paging import PAGE_SIZE, after_arg
from api.database import db
from settlement import lists
from settlement.models import Report
from settlement.reports import service as reports
from settlement.reports.bodies import plain_body
from settlement.reports.formats import FORMATS
from workers.queue import enqueue, report_job_id

MAX_ERRORS_SHOWN = 1000
CHUNK = 1 << 20


@blp.route("/reports")
@page("report_status")
def reports_list():
    _, policy = tenant_view()
    everything = request.args.get("all") == "1"
    since = None if everything else fmt.start_of_today(policy.timezone).astimezone(
        dt.timezone.utc)
    found = lists.reports_page(db(), g.principal.tenant_id, status=None, fmt=None,
                               since=since, after=after_arg(), limit=PAGE_SIZE)
    return render_template("console/reports.html", reports=found.rows,
                           next_after=found.next_after, everything=everything,
                           formats=FORMATS, may_upload=g.principal.may("uploader"))


@blp.route("/reports/<int:report_id>")
@page("report_status")
def report_show(report_id):
    report = db().scalar(select(Report).where(Report.tenant_id == g.principal.tenant_id,
                                              Report.number == report_id))
    if report is None:
        return render_template("console/error.html", status=404,
                               message=f"No report {report_id}."), 404
    errors = reports.report_errors(db(), report.tenant_id, report.id,
                                   limit=MAX_ERRORS_SHOWN + 1)
    return render_template("console/report.html", report=report,
                           errors=errors[:MAX_ERRORS_SHOWN],
                           truncated=len(errors) > MAX_ERRORS_SHOWN)


def _chunks(stream):
    while chunk := stream.read(CHUNK):
        yield chunk


@blp.route("/reports", methods=["POST"])
@page("uploader")
def reports_upload():
    upload = request.files.get("file")
    report_format = request.form.get("format", "generic")
    if upload is None or not upload.filename:
        flash("Choose a file to upload.", "error")
        return redirect(url_for("console.reports_list"))
    name = upload.filename.lower().removesuffix(".gz")  # a gzip body is inflated anyway
    media = "json" if name.endswith(".json") else (
        "ndjson" if name.endswith((".ndjson", ".jsonl")) else "csv")
    settings = current_app.config["SETTLE"]
    principal = g.principal
    try:
        received = reports.receive(
            db(), principal.tenant_id, report_format, media,
            plain_body(_chunks(upload.stream), None),
            uploaded_by=principal.name, source=request.form.get("source") or None,
            max_bytes=settings.max_upload_bytes)
    except (reports.UploadRefused, reports.UploadTooLarge) as exc:
        db().rollback()
        problems = "; ".join(e.message for e in getattr(exc, "errors", [])) or str(exc)
        flash(f"Refused: {problems}", "error")
        return redirect(url_for("console.reports_list"))
    number = db().scalar(select(Report.number).where(
        Report.tenant_id == principal.tenant_id, Report.id == received.report_id))
    if received.duplicate:
        db().rollback()
        flash(f"The same file was uploaded before: report {number}.", "ok")
        return redirect(url_for("console.report_show", report_id=number))
    record("report.uploaded", "report", number,
           {"format": report_format, "media": media, "via": "console"})
    db().commit()
    enqueue("process_report", principal.tenant_id, received.report_id, settings=settings,
            job_id=report_job_id(settings, principal.tenant_id, received.report_id))
    flash(f"Report {number} received.", "ok")
    return redirect(url_for("console.report_show", report_id=number))
