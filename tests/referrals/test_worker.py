"""The referral sweep as a REAL rq job (`rq worker --burst` subprocesses) on real Redis and
PostgreSQL: enqueued, it changes nothing until a worker runs it; run, it expires the ended
windows; run again, it changes nothing."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from settlement.config import Settings
from settlement.db import engine_for
from tests.referrals.helpers import make_tenant, put_members, referrals, report, row
from workers import WORKER_CLASS
from tests.conftest import forget_rq_keys

ROOT = Path(__file__).parents[2]
RQ = Path(sys.executable).parent / "rq"
pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def settings(pg_url, redis_url):
    """Queues of this test's own; afterwards every key it left in Redis is gone."""
    prefix = f"test-{uuid.uuid4().hex[:12]}-"
    yield Settings(database_url=pg_url, redis_url=redis_url, queue_prefix=prefix)
    forget_rq_keys(redis_url, prefix)


def run_worker(settings) -> None:
    env = {**os.environ, "SETTLE_DATABASE_URL": settings.database_url,
           "SETTLE_REDIS_URL": settings.redis_url, "SETTLE_QUEUE_PREFIX": settings.queue_prefix,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [str(RQ), "worker", "--worker-class", WORKER_CLASS, "--burst",
         "--url", settings.redis_url,
         "--name", f"{settings.queue_prefix}worker", f"{settings.queue_prefix}referrals"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _entries(engine, tenant) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM journal_entries WHERE tenant_id = :t "
                                 "AND kind = 'referral'"), {"t": tenant.id}).scalar_one()


def test_the_sweep_job_expires_ended_windows_on_an_rq_worker_once(settings, pg_url):
    from workers.queue import enqueue, queue

    engine = engine_for(pg_url)
    tenant = make_tenant(engine)
    put_members(engine, tenant, {"external_id": "R1", "joined_at": "2026-01-05"},
                {"external_id": "OLD", "referred_by": "R1", "joined_at": "2026-06-01",
                 "address_line1": "1 Elm St"},
                {"external_id": "NEW", "referred_by": "R1", "joined_at": "2026-11-01",
                 "address_line1": "2 Elm St"},
                {"external_id": "BUYER", "referred_by": "R1", "joined_at": "2026-06-01",
                 "address_line1": "3 Elm St"})
    report(engine, tenant, row("t1", "BUYER", day="2026-06-20", status="confirmed"))
    job = enqueue("sweep_referrals", tenant.id, "2026-11-24", settings=settings)
    assert job.get_status() == "queued" and queue("referrals", settings).count == 1
    assert referrals(engine, tenant)["OLD"] == ("open", None, None)  # nothing ran yet
    run_worker(settings)
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value()["expired"] == 1
    assert referrals(engine, tenant) == {"OLD": ("expired", "window_ended", None),
                                         "NEW": ("open", None, None),
                                         "BUYER": ("earned", None, "t1")}
    entries = _entries(engine, tenant)
    again = enqueue("sweep_referrals", tenant.id, "2026-11-24", settings=settings)
    run_worker(settings)
    again.refresh()
    assert again.return_value()["expired"] == 0
    assert _entries(engine, tenant) == entries == 1
    assert referrals(engine, tenant)["OLD"] == ("expired", "window_ended", None)


def test_the_sweep_job_runs_in_process_without_redis(pg_url):
    from workers.queue import enqueue

    engine = engine_for(pg_url)
    tenant = make_tenant(engine)
    put_members(engine, tenant, {"external_id": "R1"},
                {"external_id": "F1", "referred_by": "R1", "joined_at": "2026-06-01",
                 "address_line1": "1 Elm St"})
    result = enqueue("sweep_referrals", tenant.id, dt.date(2026, 11, 24).isoformat(),
                     settings=Settings(database_url=pg_url, redis_url=None))
    assert result["expired"] == 1 and result["statuses"]["expired"] == 1
