"""A worker killed (SIGKILL) at each step of a run's execution: the run resumes from the
database with a fresh job and pays each member exactly once (see settlement/failpoints.py
for the steps). Real PostgreSQL, Redis, rq workers and the PayPal sandbox."""
from __future__ import annotations

import uuid

import pytest

from settlement.failpoints import POINTS
from tests.faults import harness as h
from tests.faults.test_run_faults import sandbox, scenario, workers  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.mark.parametrize("point", POINTS)
def test_a_worker_killed_at_each_step_of_a_run_resumes_and_pays_each_member_once(
        point, scenario, sandbox, workers):  # noqa: F811
    scn = scenario
    h.sandbox_call(sandbox, "/_sandbox/config", {"polls_per_step": 0})
    workers.enqueue("execute_run", scn.tenant_id, scn.run_id)
    # The first worker dies at `point` (its work horse is SIGKILLed there), every time.
    workers.burst(env={"SETTLE_FAILPOINT": point}, timeout=60)
    assert h.run_status(scn) == "executing", "the kill left the run unfinished"
    # An operator resumes: a fresh execute_run job on a healthy worker.
    workers.enqueue("execute_run", scn.tenant_id, scn.run_id,
                    job_id=f"{workers.settings.queue_prefix}resume-{uuid.uuid4().hex[:6]}")
    proc = workers.burst(timeout=60)
    assert proc.returncode == 0, workers.log(proc)
    assert len(h.sandbox_batches(sandbox)) == 1, "a batch was sent to PayPal twice"
    h.assert_paid_exactly_once(scn, sandbox)
