"""workers.supervise: a process that exits is started again; a stop request is passed on
and ends the supervisor. Real subprocesses."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.faults.harness import ROOT, wait_for

# A child that counts its starts in a file, exits at once the first time, then waits.
CHILD = """
import pathlib, sys, time
starts = pathlib.Path(sys.argv[1])
n = int(starts.read_text() or 0) + 1 if starts.exists() else 1
starts.write_text(str(n))
if n == 1:
    sys.exit(3)
time.sleep(60)
"""


def test_a_command_that_exits_is_started_again_and_a_sigterm_stops_both(tmp_path: Path):
    starts = tmp_path / "starts"
    proc = subprocess.Popen([sys.executable, "-m", "workers.supervise", "--", sys.executable,
                             "-c", CHILD, str(starts)], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: starts.exists() and starts.read_text() == "2", 15,
                 "the command to be started a second time")
        time.sleep(0.2)
        assert proc.poll() is None, "the supervisor keeps running"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 128 + signal.SIGTERM  # the command's end by SIGTERM, passed on
    assert starts.read_text() == "2"  # not started again after the stop
    assert "exited with 3; starting it again" in proc.stderr.read()
