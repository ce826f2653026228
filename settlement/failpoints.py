"""Failpoints: named places where a test can make the process die, to prove that every
step of a run resumes after a crash exactly there.

Off unless the environment names one: SETTLE_FAILPOINT=batch.submitting makes the process
that reaches `reach("batch.submitting")` kill itself with SIGKILL (no cleanup, no rollback
handlers: what a power cut or the OOM killer does). Production never sets the variable.
"""
from __future__ import annotations

import os
import signal

POINTS = (
    "run.started",  # the run marked executing and committed; no batch job queued yet
    "batch.submitting",  # batch reserved, marked submitting, committed; provider not called
    "batch.answered",  # the provider answered; nothing of it recorded yet
    "batch.recorded",  # the answer and its money committed; the job not finished
)


def reach(name: str) -> None:
    if os.environ.get("SETTLE_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
