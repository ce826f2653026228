"""The runs' watchdog: no approved run waits for a person.

A run's progress lives in the database, its jobs in Redis. A job can be lost (its worker
killed while it read items back, Redis restarted empty, a job that died more times than rq
retries it), and then nothing would move the run until someone ran `settle run execute`.
The clock process runs `watch_runs` every minute: every run `approved` or `executing` is
started (or completed, when its batches are all done) and each of its open batches that no
live job holds is handed to `resume`, which enqueues its batch job. The batch job then does
what its state says (see `execute.py`): submits a pending batch, asks the provider about one
in `submitting`/`unknown`, polls one the provider has (PayPal's items, the points
partners' answer files).

Safe to run at any time, twice at once, or while the run's own jobs work: starting a run is
idempotent, a batch held by a live job is skipped, and a second batch job on the same batch
leaves at once (`busy`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from settlement.db import tenant_session
from settlement.models import SettlementRun
from settlement.runs.execute import batch_is_held, start_execution
from settlement.states import RunStatus

OPEN_RUN_STATUSES = (RunStatus.APPROVED, RunStatus.EXECUTING)
Resume = Callable[[int, int], None]  # (tenant_id, batch_id) -> enqueue its batch job


@dataclass
class WatchReport:
    runs: int = 0  # runs looked at
    resumed: list[int] = field(default_factory=list)  # batch ids handed to `resume`
    held: list[int] = field(default_factory=list)  # batch ids a live job works on
    failed: dict[int, str] = field(default_factory=dict)  # run id -> why it was not watched

    def as_dict(self) -> dict:
        return {"runs": self.runs, "resumed": self.resumed, "held": self.held,
                "failed": {str(k): v for k, v in self.failed.items()}}


def open_runs(engine: Engine) -> list[tuple[int, int]]:
    """(tenant_id, run_id) of every run that is approved or executing, in every tenant."""
    with tenant_session(engine) as session:
        return [tuple(row) for row in session.execute(
            select(SettlementRun.tenant_id, SettlementRun.id).where(
                SettlementRun.status.in_(OPEN_RUN_STATUSES)).order_by(SettlementRun.id))]


def watch_runs(engine: Engine, resume: Resume) -> WatchReport:
    report = WatchReport()
    for tenant_id, run_id in open_runs(engine):
        report.runs += 1
        try:
            with tenant_session(engine, tenant_id) as session:
                batch_ids = start_execution(session, tenant_id, run_id)
                session.commit()
        except Exception as exc:  # noqa: BLE001 - one run's trouble must not stop the rest
            report.failed[run_id] = f"{type(exc).__name__}: {exc}"
            continue
        for batch_id in batch_ids:
            if batch_is_held(engine, batch_id):
                report.held.append(batch_id)
            else:
                resume(tenant_id, batch_id)
                report.resumed.append(batch_id)
    return report
