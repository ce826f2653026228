"""The rq worker the Procfile runs: rq's forking `Worker`, with the jobs' code imported once,
in the worker process, before any fork.

rq runs each job in a fresh fork of the worker (its work horse). A worker that has not
imported the jobs makes every horse import them again: SQLAlchemy, the models, the
adapters, about 0.4 s of CPU per job, the fork-and-import cost rq's documentation suggests
preloading against. Nothing here opens a connection: engines are made lazily, in the
process that uses them, after the fork.
"""
from __future__ import annotations

import time

import structlog
from rq import Worker

import workers.jobs  # noqa: F401  (loaded here, inherited by every work horse)
from settlement.config import get_settings
from settlement.logs import configure
from settlement.metrics import JOB_DURATION
from settlement.runtime import tune_gc_for_bulk_work

configure(get_settings().log_level)  # JSON lines, rq's own included
tune_gc_for_bulk_work()  # after the imports: they are frozen with the rest


class PreloadedWorker(Worker):
    """`rq.Worker`, from a module that has loaded the jobs (`--worker-class
    workers.worker.PreloadedWorker`); in the work horse, each job's log lines carry the
    id of the request that enqueued it, and its run time is counted for /metrics."""

    def perform_job(self, job, queue) -> bool:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            job_id=job.id, request_id=(job.meta or {}).get("request_id"))
        started = time.perf_counter()
        succeeded = False
        try:
            succeeded = super().perform_job(job, queue)
            return succeeded
        finally:
            name = (job.func_name or "unknown").rsplit(".", 1)[-1]
            JOB_DURATION.labels(name, "finished" if succeeded else "failed").observe(
                time.perf_counter() - started)
