"""Every job the system runs, registered in one place with its queue and limits."""
from __future__ import annotations

from contextvars import ContextVar

from settlement.db import get_engine
from settlement.reports import service as reports
from workers.logging import job_logger

# queue name -> (job timeout seconds, retries)
QUEUES = {"reports": (3600, 3)}
# Set while a job runs in-process, so that it uses its caller's database.
inline_engine: ContextVar = ContextVar("inline_engine", default=None)


def _engine():
    return inline_engine.get() or get_engine()


def process_report(tenant_id: int, report_id: int) -> dict:
    log = job_logger(tenant_id=tenant_id, report_id=report_id)
    log.info("report.processing")
    report = reports.process(_engine(), tenant_id, report_id)
    log.info("report.processed", status=report.status, lines=report.lines,
             inserted=report.inserted, updated=report.updated, rejected=report.rejected)
    return {"report_id": report.id, "status": report.status}


JOBS = {"process_report": (process_report, "reports")}
