"""The registry names every job by its import path; the queue enqueues by name without
importing the jobs, so the jobs (which enqueue others) and the queue do not import each
other."""
from __future__ import annotations

import subprocess
import sys

from workers.registry import JOBS, QUEUES, job_function


def test_every_registered_job_is_the_function_of_that_name_on_a_known_queue():
    for name, (_, queue_name) in JOBS.items():
        assert job_function(name).__name__ == name
        assert queue_name in QUEUES, name


def test_the_queue_imports_no_job():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, workers.queue; print('workers.jobs' in sys.modules)"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"
