"""The Procfile's queue layout on payout day: the `payouts` process, run as the Procfile
says (a real `rq worker`, real Redis and PostgreSQL), takes payout jobs and never a report,
so a payout batch never waits behind a report job (docs/PERFORMANCE.md, "Payout day under
load, 2026-12-06"); `worker` still listens on `payouts` too."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from settlement.config import Settings
from tests.conftest import forget_rq_keys

ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def procfile_command(process: str) -> list[str]:
    """The Procfile's command for `process`, without the supervisor (which would start a
    burst worker again and again)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{process}:"):
            argv = shlex.split(line.split(":", 1)[1])
            if "--" in argv:
                argv = argv[argv.index("--") + 1:]
            return argv
    raise AssertionError(f"the Procfile has no `{process}` process")


@pytest.fixture
def settings(pg_url, redis_url):
    prefix = f"test-{uuid.uuid4().hex[:12]}-"
    yield Settings(database_url=pg_url, redis_url=redis_url, queue_prefix=prefix)
    forget_rq_keys(redis_url, prefix)


def run_burst(argv: list[str], settings: Settings) -> subprocess.CompletedProcess:
    """The command as the Procfile runs it, its queues under the test's prefix, `--burst`
    so it stops once its queues are empty."""
    from workers.registry import QUEUES
    argv = [settings.redis_url if word == "${SETTLE_REDIS_URL}" else
            settings.queue_prefix + word if word in QUEUES else word for word in argv]
    if argv[0] == "rq":
        argv[0] = str(Path(sys.executable).parent / "rq")
    env = {**os.environ, "SETTLE_DATABASE_URL": settings.database_url,
           "SETTLE_REDIS_URL": settings.redis_url, "SETTLE_QUEUE_PREFIX": settings.queue_prefix,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([*argv, "--burst", "--name", f"{settings.queue_prefix}payouts"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_the_procfiles_payouts_process_runs_payout_jobs_and_leaves_reports_queued(settings):
    from workers.queue import enqueue, queue

    report = enqueue("process_report", 1, 1, settings=settings)  # queued first
    payout = enqueue("watch_runs", settings=settings)  # a payout-queue job

    run_burst(procfile_command("payouts"), settings)

    assert payout.get_status(refresh=True) == "finished"
    assert report.get_status(refresh=True) == "queued"
    assert queue("reports", settings).job_ids == [report.id]


def test_the_procfiles_general_worker_still_listens_on_payouts():
    from workers.registry import QUEUES
    queues = [word for word in procfile_command("worker") if word in QUEUES]
    assert "payouts" in queues and "reports" in queues
    assert [word for word in procfile_command("payouts") if word in QUEUES] == ["payouts"]


def test_a_job_enqueued_at_the_front_is_taken_before_the_jobs_already_waiting(settings):
    from workers.queue import enqueue, queue

    waiting = [enqueue("watch_runs", settings=settings) for _ in range(2)]
    collect = enqueue("run_batch", 1, 1, settings=settings, at_front=True)

    assert queue("payouts", settings).job_ids == [collect.id, *(job.id for job in waiting)]
