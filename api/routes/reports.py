"""Commission reports: upload (streamed, stored, processed by a job) and status."""
from __future__ import annotations

import datetime as dt

from flask import current_app, request
from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import current, record, requires
from api.database import db
from api.errors import Problem, http_status
from api.public_ids import resolve
from api.schemas.reports import ReportOut, ReportQuery
from settlement.models import Report
from settlement.reports import service as reports
from settlement.reports.bodies import plain_body
from workers.queue import enqueue, report_job_id

blp = Blueprint("reports", __name__, description="Commission reports from networks")
STREAM_CHUNK = 1 << 20
_TITLES = {400: "Bad Request", 415: "Unsupported Media Type", 422: "Unprocessable Entity"}
MAX_ERRORS_SHOWN = 1000


def _media() -> tuple[str, object]:
    """(media, byte stream) of the body: raw CSV/JSON/NDJSON, or multipart field `file`."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise Problem(400, "Bad Request", "multipart uploads carry the report in field 'file'",
                          [{"line": None, "field": "file", "code": "missing_field",
                            "message": "no field 'file'"}])
        name = (upload.filename or "").lower()
        kind = upload.mimetype or ""
        media = _media_of(kind) or ("json" if name.endswith(".json") else
                                    "ndjson" if name.endswith((".ndjson", ".jsonl")) else "csv")
        return media, upload.stream
    media = _media_of(mimetype)
    if media is None:
        raise Problem(415, "Unsupported Media Type",
                      "send text/csv, application/json, application/x-ndjson or multipart")
    return media, request.stream


def _media_of(mimetype: str) -> str | None:
    if mimetype in ("text/csv", "application/csv"):
        return "csv"
    if mimetype == "application/json":
        return "json"
    if mimetype in ("application/x-ndjson", "application/ndjson", "application/jsonl",
                    "application/jsonlines"):
        return "ndjson"
    return None


def _read(stream):
    while True:
        chunk = stream.read(STREAM_CHUNK)
        if not chunk:
            return
        yield chunk


def _aware(moment):
    """SQLite hands date-times back without their (UTC) offset; the API states it."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment


def report_view(report: Report, *, duplicate: bool = False, with_errors: bool = True) -> dict:
    view = {"id": report.number, "format": report.format, "source": report.source,
            "status": report.status, "duplicate": duplicate, "size_bytes": report.size_bytes,
            "as_of": _aware(report.as_of),
            "counts": {k: getattr(report, k) for k in (
                "lines", "inserted", "updated", "unchanged", "stale", "rejected",
                "unattributed", "unmatched")}}
    if with_errors:
        errors = reports.report_errors(db(), report.tenant_id, report.id,
                                       limit=MAX_ERRORS_SHOWN + 1)
        view["errors"] = [{"line": e.line, "field": e.field, "code": e.code,
                           "message": e.message} for e in errors[:MAX_ERRORS_SHOWN]]
        view["errors_truncated"] = len(errors) > MAX_ERRORS_SHOWN
    return view


@blp.route("/reports", methods=["POST"])
@requires("uploader")
@blp.arguments(ReportQuery, location="query")
@blp.response(202, ReportOut)
@blp.doc(requestBody={"content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
    "application/x-ndjson": {"schema": {"type": "string"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}}}}}})
def upload(query):
    """Upload a commission report. 202 with its id; the same file again answers 200 with the
    first report's id and `duplicate: true`, and applies nothing. A gzip body
    (`Content-Encoding: gzip`, or a .gz file) is inflated, the size limit counting the
    inflated bytes; UTF-16 is refused (send UTF-8)."""
    limit = current_app.config["SETTLE"].max_upload_bytes
    if (request.content_length or 0) > limit:
        raise Problem(413, "Payload Too Large", f"a report is at most {limit} bytes")
    media, stream = _media()
    principal = current()
    session = db()
    try:
        body = plain_body(_read(stream), request.headers.get("Content-Encoding"))
        received = reports.receive(session, principal.tenant_id, query["format"], media,
                                   body, uploaded_by=principal.name,
                                   source=query["source"], as_of=query["as_of"],
                                   max_bytes=limit)
    except reports.UploadTooLarge as exc:
        session.rollback()
        raise Problem(http_status(exc.code), "Payload Too Large",
                      f"a report is at most {exc.limit} bytes")
    except reports.UploadRefused as exc:
        # The refusal's faults are the upload's own lines and fields.
        session.rollback()
        status = http_status(exc.code)
        raise Problem(status, _TITLES[status], exc.message, exc.errors)
    if received.duplicate:
        session.rollback()
        report = session.get(Report, (principal.tenant_id, received.report_id))
        return report_view(report, duplicate=True, with_errors=False), 200
    report = session.get(Report, (principal.tenant_id, received.report_id))
    record("report.uploaded", "report", report.number,
           {"format": query["format"], "media": media})
    session.commit()
    settings = current_app.config["SETTLE"]
    enqueue("process_report", principal.tenant_id, received.report_id, settings=settings,
            job_id=report_job_id(settings, principal.tenant_id, received.report_id))
    session.expire_all()
    report = session.get(Report, (principal.tenant_id, received.report_id))
    return report_view(report, with_errors=False), 202


@blp.route("/reports/<int:report_id>/retry", methods=["POST"])
@requires("uploader")
@blp.response(202, ReportOut)
def retry_report(report_id):
    """Run a failed report again (nothing of a failed report was applied): its errors are
    cleared and it is queued. 409 for a report that is not failed. The same bytes uploaded
    again answer `duplicate: true` with this report, whatever its status: retry is the way
    to run it again. `report_id` is the tenant's report number, as every answer gives it."""
    number, report_id = report_id, resolve(Report, report_id, "report")
    principal = current()
    session = db()
    try:
        reports.retry(session, principal.tenant_id, report_id)
    except LookupError:
        raise Problem(404, "Not Found", f"no report {number}")
    except reports.RetryRefused as exc:
        session.rollback()
        raise Problem(http_status(exc.code), "Conflict", exc.message)
    record("report.retried", "report", number)
    session.commit()
    settings = current_app.config["SETTLE"]
    enqueue("process_report", principal.tenant_id, report_id, settings=settings,
            job_id=report_job_id(settings, principal.tenant_id, report_id))
    session.expire_all()
    return report_view(session.get(Report, (principal.tenant_id, report_id)),
                       with_errors=False)


@blp.route("/reports/<int:report_id>")
@requires("report_status")
@blp.response(200, ReportOut)
def get_report(report_id):
    """`report_id` is the tenant's report number, as the upload answered it."""
    report = db().scalar(select(Report).where(Report.tenant_id == current().tenant_id,
                                              Report.number == report_id))
    if report is None:
        raise Problem(404, "Not Found", f"no report {report_id}")
    return report_view(report)
