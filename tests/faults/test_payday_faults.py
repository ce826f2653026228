"""Exactly once against PayPal, and runs that never stall: the nine fault cases of a payday.

Each case approves a run of PayPal members, injects its fault, and then nobody acts: the
supervised workers and the clock's watchdog (every second here, every minute in
production) must carry the run to `completed` with every member paid exactly once at
PayPal, nothing left reserved, and every journal entry balanced
(`harness.assert_paid_exactly_once`). The time each case took is appended to
var/faults/payday.jsonl (`make faults` runs them at 20,000 members).
"""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.orm import Session

from api.errors import http_status
from settlement.db import engine_for
from settlement.runs import plan as runs
from tests.conftest import REQUIRE_SERVICES
from tests.faults import harness as h
from tests.faults.payday import Payday

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def payday(pg_url, tmp_path):
    if h.shutil.which("redis-server") is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is required (REQUIRE_SERVICES=1) but not on PATH")
        pytest.skip("redis-server not on PATH")
    day = Payday(pg_url, tmp_path)
    try:
        yield day
    finally:
        day.close()


def finish(day: Payday, case: str) -> None:
    seconds = day.wait_completed()
    h.assert_paid_exactly_once(day.scn, day.sandbox)
    day.record(case, seconds)


def test_a_normal_payday_completes_and_pays_each_member_once(payday):
    payday.scenario()
    payday.go()
    finish(payday, "normal")


def test_a_timeout_after_paypal_accepted_is_found_by_its_sender_batch_id_and_completes(
        payday):
    payday.scenario()
    h.sandbox_faults(payday.sandbox, {"kind": "timeout_after_accept", "seconds": 4})
    payday.go()
    finish(payday, "timeout after accept")
    assert all(b.attempts == 1 for b in h.batch_rows(payday.scn))


def test_a_5xx_once_after_paypal_accepted_adopts_the_original_batch_and_completes(payday):
    payday.scenario()
    h.sandbox_faults(payday.sandbox, {"kind": "http_500_after_accept"})
    payday.go()
    finish(payday, "5xx once")


@pytest.mark.parametrize("point, case", [
    ("batch.answered", "SIGKILL when PayPal accepted"),
    ("batch.polling", "SIGKILL while reading items back")])
def test_a_worker_killed_once_at_a_step_is_resumed_by_the_watchdog(payday, point, case):
    payday.scenario()
    payday.go(SETTLE_FAILPOINT=point, SETTLE_FAILPOINT_ONCE=str(payday.workdir / "killed"))
    finish(payday, case)
    assert (payday.workdir / "killed").exists(), "the failpoint was never reached"


def test_redis_killed_and_restarted_empty_mid_run_completes_with_nobody_acting(payday):
    payday.scenario()
    h.sandbox_call(payday.sandbox, "/_sandbox/config", {"polls_per_step": 4})
    payday.go()
    payday.wait_batches(lambda s: "submitted" in s, "a batch at PayPal")
    payday.redis.restart()  # every queued and running job, and the clock's state, gone
    finish(payday, "Redis killed and restarted empty")


def test_database_backends_terminated_mid_run_complete_with_nobody_acting(payday):
    payday.scenario()
    h.sandbox_call(payday.sandbox, "/_sandbox/config", {"polls_per_step": 4})
    payday.go()
    payday.wait_batches(lambda s: any(x != "pending" for x in s), "a batch under way")
    assert payday.terminate_backends(3) >= 1, "no worker connection was terminated"
    finish(payday, "database backends terminated")


def test_three_workers_and_a_manual_resume_during_submission_pay_each_member_once(payday):
    payday.scenario()
    h.sandbox_faults(payday.sandbox, {"kind": "delay", "seconds": 2, "on": "create"})
    payday.go(workers=3)
    payday.wait_batches(lambda s: "submitting" in s, "a batch in submission")
    # The operator's `settle run execute` while the batch is being submitted.
    payday.pool.enqueue("execute_run", payday.scn.tenant_id, payday.scn.run_id)
    for batch in h.batch_rows(payday.scn):
        payday.pool.enqueue("run_batch", payday.scn.tenant_id, batch.id)
    finish(payday, "three workers and a manual resume")
    assert all(b.attempts == 1 for b in h.batch_rows(payday.scn))


def test_of_six_simultaneous_approvals_exactly_one_wins_and_the_run_completes(payday):
    scn = payday.scenario(approve=False)
    engine = engine_for(payday.pg_url)
    barrier = threading.Barrier(6, timeout=120)
    outcomes: list[str] = []

    def approve(n: int) -> None:
        with Session(engine) as session:
            barrier.wait()
            try:
                runs.approve_run(session, scn.tenant_id, scn.run_id, f"key:approver-{n}")
                session.commit()
                outcomes.append("approved")
            except runs.RunError as exc:
                session.rollback()
                outcomes.append(f"{http_status(exc.code)} {exc.code}")

    threads = [threading.Thread(target=approve, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["409 not_planned"] * 5 + ["approved"]
    payday.go()
    finish(payday, "concurrent approvals")


def test_an_approved_run_whose_execute_job_was_lost_is_started_by_the_watchdog(payday):
    """No execute_run job at all (lost with Redis before a worker took it): the clock's
    watchdog starts the run."""
    payday.scenario()
    payday.start_workers(1)
    payday.start_clock()
    payday.started = time.monotonic()
    finish(payday, "execute job lost")
