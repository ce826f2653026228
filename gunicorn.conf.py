"""gunicorn reads this file from the working directory by itself.

With PROMETHEUS_MULTIPROC_DIR set (an empty folder, shared with the rq workers of the same
host), each process keeps its metrics in files there and /metrics adds them up; a web
worker that exits is marked dead so its live gauges stop counting."""
import os


def child_exit(_server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
