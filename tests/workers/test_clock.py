"""The clock (`rq cron workers.cron`): what it schedules, loaded the way rq's cron scheduler
loads it, and every recurring job run twice at once against a database of its own, which
must change nothing that one run would not."""
from __future__ import annotations

import contextvars
import threading
import uuid

import pytest
from croniter import croniter
from sqlalchemy import create_engine, text

from settlement.config import Settings
from settlement.db import engine_for
from settlement.migrate import upgrade
from sandboxes.paypal import serve
from tests.conftest import PG_ADMIN_URL
from tests.faults import harness as h
from workers.inline import inline_engine, inline_settings
from workers.cron import schedule
from workers.registry import JOBS, job_function

pytestmark = [pytest.mark.postgres]


def test_every_scheduled_job_is_a_job_of_the_registry_with_a_valid_schedule():
    planned = schedule(Settings(watchdog_seconds=60))
    assert {"watch_runs", "watch_reports", "follow_payouts", "sweep_all_referrals",
            "confirm_held", "check_ledger"} <= set(planned)
    for name, when in planned.items():
        assert name in JOBS, name
        assert ("interval" in when) != ("cron" in when), name
        if "cron" in when:
            assert croniter.is_valid(when["cron"]), (name, when)
        else:
            assert when["interval"] == 60


def test_rq_cron_loads_the_schedule_on_this_deployments_queues(redis_url, monkeypatch):
    from redis import Redis
    from rq.cron import CronScheduler

    from settlement.config import get_settings
    monkeypatch.setenv("SETTLE_QUEUE_PREFIX", "clock-test-")
    get_settings.cache_clear()
    try:
        scheduler = CronScheduler(connection=Redis.from_url(redis_url))
        scheduler.load_config_from_file("workers.cron")
    finally:
        get_settings.cache_clear()
    loaded = {job.name: job for job in scheduler.get_jobs()}
    assert set(loaded) == {f"clock-test-{name}" for name in schedule(get_settings())}
    for name, job in loaded.items():
        _, queue = JOBS[name.removeprefix("clock-test-")]
        assert job.queue_name == f"clock-test-{queue}"


@pytest.fixture
def own_database():
    """A database of this test's own: the jobs below look at every tenant."""
    name = f"settle_clock_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url
    finally:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_every_recurring_job_run_twice_at_once_pays_once_and_keeps_the_ledger_whole(
        own_database, tmp_path):
    server, sandbox = serve(client_id=h.CLIENT_ID, client_secret=h.CLIENT_SECRET,
                            polls_per_step=0)
    try:
        scn = h.make_scenario(own_database, members=8, failing=1)
        settings = h.settings_for(own_database, None, "", sandbox, tmp_path / "outbox",
                                  payout_poll_seconds=0.01, payout_max_polls=10)
        results: dict[str, list] = {}

        def run_job(name: str, slot: list, barrier: threading.Barrier) -> None:
            inline_engine.set(engine_for(own_database))
            inline_settings.set(settings)
            barrier.wait()
            try:
                slot.append(job_function(name)())
            except Exception as exc:  # noqa: BLE001 - reported below, with its job
                slot.append(exc)

        for name in schedule(settings):
            barrier = threading.Barrier(2, timeout=120)
            slot: list = []
            threads = [threading.Thread(target=contextvars.copy_context().run,
                                        args=(run_job, name, slot, barrier))
                       for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            results[name] = slot
        failed = {n: r for n, rs in results.items() for r in rs if isinstance(r, Exception)}
        assert failed == {}
        # The watchdog, twice at once, carried the approved run to its end, paying once.
        h.assert_paid_exactly_once(scn, sandbox)
        assert all(r["failed"] == [] for r in results["check_ledger"])
    finally:
        server.shutdown()
