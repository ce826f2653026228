"""A report whose process is killed (SIGKILL: no cleanup, no rollback handler) in the middle
of applying it is left `processing` with nothing applied; the watchdog picks it up and
applies it exactly once (issue 11: such a report stayed stuck until rq's cleanup, or for
good)."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

from sqlalchemy import text

from settlement.db import tenant_session
from settlement.reports import service as reports
from tests.conftest import generic_csv
from tests.domain.helpers import add_members, add_retailer, add_rule

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILLED = -9


def _counts(engine, tenant) -> tuple[int, int]:
    with engine.connect() as conn:
        commissions = conn.execute(text("SELECT count(*) FROM commissions WHERE tenant_id = :t"),
                                   {"t": tenant.id}).scalar_one()
        postings = conn.execute(text("SELECT count(*) FROM postings WHERE tenant_id = :t"),
                                {"t": tenant.id}).scalar_one()
    return commissions, postings


def test_a_report_killed_while_applying_is_applied_once_by_the_watchdog(
        engine, db_url, make_tenant):
    tenant = make_tenant()
    add_retailer(engine, tenant, "macys")
    add_rule(engine, tenant)
    add_members(engine, tenant, "M1")
    body = generic_csv("T-1,O-1,M1,macys,apparel,2026-10-01,120.00,6.00,USD,confirmed",
                       "T-2,O-2,M1,macys,apparel,2026-10-02,40.00,2.00,USD,pending")
    with tenant_session(engine, tenant.id) as session:
        received = reports.receive(session, tenant.id, "generic", "csv", [body],
                                   uploaded_by="test", max_bytes=1 << 20,
                                   as_of=dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc))
        session.commit()
    job = ("from settlement.db import engine_for\n"
           "from settlement.reports.service import process\n"
           f"process(engine_for({db_url!r}), {tenant.id}, {received.report_id})\n")
    died = subprocess.run([sys.executable, "-c", job], cwd=ROOT, timeout=120,
                          env={**os.environ, "SETTLE_FAILPOINT": "report.applied"})
    assert died.returncode == KILLED
    with engine.connect() as conn:
        status, attempts = conn.execute(text(
            "SELECT status, attempts FROM reports WHERE tenant_id = :t AND id = :r"),
            {"t": tenant.id, "r": received.report_id}).one()
    assert (status, attempts) == ("processing", 1)
    assert _counts(engine, tenant) == (0, 0)

    def requeue(tenant_id, report_id):
        reports.process(engine, tenant_id, report_id)

    watched = reports.requeue_stalled_reports(engine, requeue, stalled_after=dt.timedelta(0))
    assert (tenant.id, received.report_id) in watched.requeued
    commissions, postings = _counts(engine, tenant)
    assert commissions == 2 and postings > 0
    reports.requeue_stalled_reports(engine, requeue, stalled_after=dt.timedelta(0))
    assert _counts(engine, tenant) == (commissions, postings)  # once, not twice
