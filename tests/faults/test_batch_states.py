"""The batch state machine of settlement/runs/execute.py, transition by transition, and
under concurrency: two jobs and a resume (the watchdog) on the same batch at once.

Real PostgreSQL and the PayPal sandbox over HTTP; jobs run in threads of this process, each
with its own connections, as rq's work horses would in theirs."""
from __future__ import annotations

import threading

import pytest

from settlement.db import tenant_session
from settlement.payouts.base import UNKNOWN, BatchResult
from settlement.payouts.paypal import PayPalAdapter
from settlement.runs.batches import batch_views
from settlement.runs.execute import (BUSY, batch_hold, batch_is_held, record_result,
                                     run_batch, start_execution)
from settlement.runs.plan import run_totals
from settlement.runs.watchdog import watch_runs
from tests.faults import harness as h

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def sandbox():
    with h.paypal_sandbox(polls_per_step=1) as url:
        yield url


@pytest.fixture
def scn(pg_url):
    return h.make_scenario(pg_url, members=12, failing=1)


def worker(scn, sandbox, outbox, *, timeout: float = 2.0):
    adapter = PayPalAdapter(sandbox, h.CLIENT_ID, h.CLIENT_SECRET, timeout=timeout,
                            backoff=0.01)

    def work(batch_id: int) -> str:
        return run_batch(scn.engine, scn.tenant_id, batch_id, lambda method: adapter,
                         str(outbox), poll_interval=0.05, max_polls=40)
    return work


def started(scn) -> list[int]:
    with tenant_session(scn.engine, scn.tenant_id) as session:
        batch_ids = start_execution(session, scn.tenant_id, scn.run_id)
        session.commit()
    return batch_ids


def at_once(*calls) -> list:
    """Run the calls in threads released together; their results in call order."""
    barrier = threading.Barrier(len(calls), timeout=120)
    results: list = [None] * len(calls)

    def run(n, call):
        barrier.wait()
        results[n] = call()
    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_a_poll_with_no_answer_keeps_the_provider_id_and_the_batch_submitted(
        scn, sandbox, tmp_path):
    [batch_id] = started(scn)
    h.sandbox_call(sandbox, "/_sandbox/config", {"polls_per_step": 50})
    work = worker(scn, sandbox, tmp_path)
    # Submitted, then polls run out while PayPal still processes it.
    assert run_batch(scn.engine, scn.tenant_id, batch_id,
                     lambda method: PayPalAdapter(sandbox, h.CLIENT_ID, h.CLIENT_SECRET,
                                                  backoff=0.01),
                     str(tmp_path), poll_interval=0.01, max_polls=2) == "submitted"
    [row] = h.batch_rows(scn)
    assert row.provider_batch_id is not None
    # PayPal does not answer this time: the batch keeps its id and stays submitted.
    assert record_result(scn.engine, scn.tenant_id, batch_id, BatchResult(
        UNKNOWN, error="header: no answer (TimeoutError)")) == "submitted"
    [after] = h.batch_rows(scn)
    assert (after.status, after.provider_batch_id) == ("submitted", row.provider_batch_id)
    with tenant_session(scn.engine, scn.tenant_id) as session:
        [view] = batch_views(session, scn.tenant_id, scn.run_id)
    assert "TimeoutError" in view["last_error"] and "poll" in view["next"]
    # The next job polls it by that id, never sends it again.
    h.sandbox_call(sandbox, "/_sandbox/config", {"polls_per_step": 0})
    assert work(batch_id) == "completed"
    assert len(h.sandbox_batches(sandbox)) == 1
    h.assert_paid_exactly_once(scn, sandbox)


def test_a_job_on_a_batch_that_a_live_job_holds_leaves_it_busy_and_sends_nothing(
        scn, sandbox, tmp_path):
    [batch_id] = started(scn)
    with batch_hold(scn.engine, batch_id) as free:
        assert free
        assert batch_is_held(scn.engine, batch_id)
        assert worker(scn, sandbox, tmp_path)(batch_id) == BUSY
    assert h.sandbox_batches(sandbox) == []
    assert h.batch_statuses(scn) == ["pending"]
    assert not batch_is_held(scn.engine, batch_id)


@pytest.mark.parametrize("state", ["pending", "unknown", "submitted"])
def test_two_jobs_and_a_watchdog_on_one_batch_at_once_pay_each_member_once(
        scn, sandbox, tmp_path, state):
    [batch_id] = started(scn)
    work = worker(scn, sandbox, tmp_path, timeout=0.5)
    if state == "unknown":  # PayPal accepted, the answer was lost
        h.sandbox_faults(sandbox, {"kind": "timeout_after_accept", "seconds": 1.5})
        assert work(batch_id) == "unknown"
    elif state == "submitted":
        h.sandbox_call(sandbox, "/_sandbox/config", {"polls_per_step": 50})
        assert run_batch(scn.engine, scn.tenant_id, batch_id, lambda m: PayPalAdapter(
            sandbox, h.CLIENT_ID, h.CLIENT_SECRET, backoff=0.01), str(tmp_path),
            poll_interval=0.01, max_polls=1) == "submitted"
        h.sandbox_call(sandbox, "/_sandbox/config", {"polls_per_step": 1})
    assert h.batch_statuses(scn) == [state]
    resumed: list[int] = []

    def resume(tenant_id, b):  # the watchdog sees every tenant's runs: ours only here
        if tenant_id == scn.tenant_id:
            resumed.append(b)
            work(b)

    def watchdog():
        return watch_runs(scn.engine, resume).as_dict()

    results = at_once(lambda: work(batch_id), lambda: work(batch_id), watchdog)
    assert "completed" in results[:2] or resumed, results
    for _ in range(3):  # whoever lost the race left it to the next job
        if h.batch_statuses(scn) != ["completed"]:
            work(batch_id)
    assert len(h.sandbox_batches(sandbox)) == 1
    assert h.batch_rows(scn)[0].attempts == 1
    h.assert_paid_exactly_once(scn, sandbox)


def test_the_watchdog_twice_at_once_resumes_each_open_batch_and_skips_held_ones(
        scn, sandbox, tmp_path):
    [batch_id] = started(scn)
    resumed: list[int] = []
    lock = threading.Lock()

    def resume(tenant_id, b):
        if tenant_id == scn.tenant_id:  # the watchdog sees every tenant's runs
            with lock:
                resumed.append(b)

    with batch_hold(scn.engine, batch_id):
        held = at_once(lambda: watch_runs(scn.engine, resume),
                       lambda: watch_runs(scn.engine, resume))
    assert resumed == [] and all(batch_id in r.held for r in held)
    free = at_once(lambda: watch_runs(scn.engine, resume),
                   lambda: watch_runs(scn.engine, resume))
    assert resumed == [batch_id, batch_id] and all(r.runs >= 1 for r in free)
    # Resuming twice is harmless: the second job finds the batch done.
    work = worker(scn, sandbox, tmp_path)
    assert [work(b) for b in resumed] == ["completed", "completed"]
    h.assert_paid_exactly_once(scn, sandbox)


def test_open_items_of_a_batch_whose_outcome_is_unknown_count_as_unknown(
        scn, sandbox, tmp_path):
    [batch_id] = started(scn)
    h.sandbox_faults(sandbox, {"kind": "timeout_after_accept", "seconds": 1.5})
    assert worker(scn, sandbox, tmp_path, timeout=0.5)(batch_id) == "unknown"
    with tenant_session(scn.engine, scn.tenant_id) as session:
        progress = run_totals(session, scn.tenant_id, scn.run_id)["progress"]
        [view] = batch_views(session, scn.tenant_id, scn.run_id)
    assert progress["by_status"] == {"unknown": 12}
    assert view["counts"] == {"unknown": 12}
    assert view["provider_batch_id"] is None and view["attempts"] == 1
    assert "sender_batch_id" in view["next"] and "no answer" in view["last_error"]
