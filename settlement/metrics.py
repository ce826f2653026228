"""Prometheus metrics of the web and the workers.

Counters and histograms are kept by the process that counts (under gunicorn and rq, with
PROMETHEUS_MULTIPROC_DIR set, in files of that folder which /metrics adds up: the
multiprocess mode of prometheus-client). What is a state rather than an event (items of
the live runs by status, queue depths, the last ledger check) is read when /metrics is
scraped, by `StateCollector`.
"""
from __future__ import annotations

import json
import os

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from typing import Callable

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from settlement.db import is_postgres, tenant_session
from settlement.states import RunStatus

log = structlog.get_logger("settle.metrics")

HTTP_REQUESTS = Counter("settle_http_requests_total", "HTTP requests answered",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("settle_http_request_duration_seconds", "time to answer a request",
                         ["method", "route"])
REPORTS = Counter("settle_reports_total", "reports processed, by format and final status",
                  ["format", "status"])
REPORT_LINES = Counter("settle_report_lines_total", "report lines processed, by outcome",
                       ["format", "outcome"])
JOB_DURATION = Histogram("settle_job_duration_seconds", "time a job ran, by job and outcome",
                         ["job", "outcome"],
                         buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
                                  900, 1800, 3600))
LINE_OUTCOMES = ("inserted", "updated", "unchanged", "stale", "rejected", "unattributed",
                 "unmatched")
LIVE_RUN_STATUSES = (RunStatus.APPROVED, RunStatus.EXECUTING)


def record_report(report) -> None:
    REPORTS.labels(report.format, report.status).inc()
    for outcome in LINE_OUTCOMES:
        count = getattr(report, outcome, None) or 0
        if count:
            REPORT_LINES.labels(report.format, outcome).inc(count)


# The queues' depths, one row per queue ({queue, queued, started, scheduled, failed}), read
# by the caller's queue layer (workers/queues_view.py): the domain knows no queue.
QueueDepths = Callable[[], list[dict]]
QUEUE_STATES = ("queued", "started", "scheduled", "failed")


class StateCollector:
    """Gauges read at scrape time from the database (and the queues when jobs go to rq)."""

    def __init__(self, engine: Engine, queue_depths: QueueDepths | None = None):
        self.engine, self.queue_depths = engine, queue_depths

    def collect(self):
        """Each source read on its own: a database or Redis that does not answer leaves
        its gauges out and says so in settle_state_up, and the counters are still served."""
        up = GaugeMetricFamily("settle_state_up", "1 when the source of the state gauges "
                               "answered this scrape", labels=["source"])
        sources = [("database", self._run_items), ("database", self._ledger_checks)]
        if self.queue_depths is not None:
            sources.append(("redis", self._queues))
        answered: dict[str, int] = {}
        for source, read in sources:
            try:
                families = list(read())
            except Exception:  # noqa: BLE001 - an unreadable source must not fail /metrics
                log.warning("metrics.state_unreadable", source=source, exc_info=True)
                answered[source] = 0
                continue
            answered.setdefault(source, 1)
            yield from families
        for source, ok in answered.items():
            up.add_metric([source], ok)
        yield up

    def _run_items(self):
        from settlement.models import RunItem, SettlementRun
        gauge = GaugeMetricFamily("settle_run_items", "items of approved or executing runs, "
                                  "by item status", labels=["status"])
        with tenant_session(self.engine) as session:
            # The web's role sees no tenant without a key: on PostgreSQL these counts come
            # from a SECURITY DEFINER function of revision 0015 (the same query).
            if is_postgres(session.bind):
                rows = session.execute(text(
                    "SELECT status, items FROM settle_live_run_item_counts()")).all()
            else:
                rows = session.execute(
                    select(RunItem.status, func.count()).join(SettlementRun, (
                        SettlementRun.tenant_id == RunItem.tenant_id)
                        & (SettlementRun.id == RunItem.run_id))
                    .where(SettlementRun.status.in_(LIVE_RUN_STATUSES))
                    .group_by(RunItem.status)).all()
        for status, count in rows:
            gauge.add_metric([status], count)
        yield gauge

    def _ledger_checks(self):
        from settlement.ledger.check import last_check
        from settlement.models import Tenant
        ok = GaugeMetricFamily("settle_ledger_check_ok", "the last ledger check of each tenant "
                               "(1 balanced, 0 a mismatch)", labels=["tenant"])
        with tenant_session(self.engine) as session:
            if is_postgres(session.bind):  # as in _run_items
                checks = [(slug, None if detail is None else json.loads(detail))
                          for slug, detail in session.execute(text(
                              "SELECT slug, detail FROM settle_last_ledger_checks()"))]
            else:
                checks = [(slug, last_check(session, tenant_id)) for tenant_id, slug
                          in session.execute(select(Tenant.id, Tenant.slug)).all()]
        for slug, found in checks:
            if found is not None and found.get("ok") is not None:
                ok.add_metric([slug], 1 if found["ok"] else 0)
        yield ok

    def _queues(self):
        depth = GaugeMetricFamily("settle_queue_jobs", "jobs in each rq queue, by state",
                                  labels=["queue", "state"])
        for row in self.queue_depths():
            for state in QUEUE_STATES:
                depth.add_metric([row["queue"], state], row[state])
        yield depth


class _ProcessMetrics:
    """This process's own metrics, when not in multiprocess mode."""

    def collect(self):
        yield from REGISTRY.collect()


def exposition(state: StateCollector) -> bytes:
    """The text of /metrics: every process's counters (multiprocess mode) or this one's,
    and the state read now."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessMetrics())
    registry.register(state)
    return generate_latest(registry)
