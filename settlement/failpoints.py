"""Failpoints: named places where a test can make the process die, to prove that every
step of a run resumes after a crash exactly there.

Off unless the environment names one: SETTLE_FAILPOINT=batch.submitting makes the process
that reaches `reach("batch.submitting")` kill itself with SIGKILL (no cleanup, no rollback
handlers: what a power cut or the OOM killer does). Production never sets the variable.

With SETTLE_FAILPOINT_ONCE=PATH as well, only the first process to get there dies (it
creates PATH; any later one sees it and goes on): a supervised worker that is started again
then carries the run to its end, as it would after one real crash.
"""
from __future__ import annotations

import os
import signal

POINTS = (
    "run.started",  # the run marked executing and committed; no batch job queued yet
    "batch.submitting",  # batch reserved, marked submitting, committed; provider not called
    "batch.polling",  # a batch the provider has is about to be read back (polled)
    "batch.answered",  # the provider answered; nothing of it recorded yet
    "batch.recorded",  # the answer and its money committed; the job not finished
)
# An exchange fulfilment's (tests/exchanges/test_faults.py), apart from a run's steps.
EXCHANGE_POINTS = (
    "exchange.file_written",  # a bank or points file on disk; its batch not yet recorded
    "exchange.answered",  # Amazon answered / a partner's file or the date is read; nothing
                          # of it recorded yet
    "exchange.returns_applied",  # a bank return notice applied and committed, not filed
)
# A report's failpoint (tests/faults/test_report_faults.py); POINTS are a run's steps.
REPORT_POINTS = (
    "report.applied",  # a report's lines and money written, the transaction not committed
)


def reach(name: str) -> None:
    if os.environ.get("SETTLE_FAILPOINT") != name:
        return
    once = os.environ.get("SETTLE_FAILPOINT_ONCE")
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # another process died here already
    os.kill(os.getpid(), signal.SIGKILL)
