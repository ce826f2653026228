"""Enqueue a job on rq, or run it in-process when no Redis is configured."""
from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from functools import lru_cache

from settlement.config import Settings, get_settings
from settlement.db import engine_for
from settlement.logs import current_request_id
from settlement.metrics import JOB_DURATION
from workers.inline import inline_engine, inline_settings
from workers.registry import JOBS, QUEUES, job_function


@lru_cache(maxsize=4)
def _redis(url: str):
    from redis import Redis
    return Redis.from_url(url)


def queue(name: str, settings: Settings | None = None):
    from rq import Queue
    settings = settings or get_settings()
    timeout, _ = QUEUES[name]
    return Queue(settings.queue_prefix + name, connection=_redis(settings.redis_url),
                 default_timeout=timeout)


def enqueue(job: str, *args, settings: Settings | None = None, job_id: str | None = None,
            at_front: bool = False):
    """Run `job` with `args`: on rq when Redis is configured, otherwise here and now, on
    the caller's database. `job_id` makes the enqueue idempotent while the job is waiting;
    `at_front` puts it before the jobs already waiting in its queue (a short job that
    finishes work already started, such as collecting a batch's answer)."""
    function_path, queue_name = JOBS[job]
    settings = settings or get_settings()
    if not settings.redis_url:
        engine_token = inline_engine.set(engine_for(settings.database_url))
        settings_token = inline_settings.set(settings)
        try:
            with timed_job(job):
                return job_function(job)(*args)
        finally:
            inline_settings.reset(settings_token)
            inline_engine.reset(engine_token)
    from rq import Retry
    _, retries = QUEUES[queue_name]
    q = queue(queue_name, settings)
    if job_id is not None:
        existing = q.fetch_job(job_id)
        if existing is not None:
            if existing.get_status(refresh=True) == "queued":
                return existing  # it will run: once is enough
            # Started (perhaps on a worker that was killed), scheduled for a retry, or done:
            # a fresh id, so a resume is never blocked by a dead job. Two jobs on one batch
            # are safe: the batch's state and the provider's idempotency keep it exactly once.
            job_id = f"{job_id}-{uuid.uuid4().hex[:8]}"
    # The request (or job) that enqueued it, so the job's log lines can be found with it.
    return q.enqueue(function_path, *args, job_id=job_id,
                     retry=Retry(max=retries, interval=[1, 5, 30]),
                     meta={"request_id": current_request_id()}, at_front=at_front)


@contextmanager
def timed_job(name: str):
    """Count the job's run time in settle_job_duration_seconds, by outcome."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = "finished"
    finally:
        JOB_DURATION.labels(name, outcome).observe(time.perf_counter() - started)


def report_job_id(settings: Settings, tenant_id: int, report_id: int) -> str:
    """One job id per report, within this deployment's queues (so a second enqueue while
    the first waits is recognised)."""
    return f"{settings.queue_prefix}report-{tenant_id}-{report_id}"


def run_job_id(settings: Settings, tenant_id: int, run_id: int) -> str:
    return f"{settings.queue_prefix}run-{tenant_id}-{run_id}"


def run_batch_job_id(settings: Settings, tenant_id: int, batch_id: int) -> str:
    return f"{settings.queue_prefix}batch-{tenant_id}-{batch_id}"


def queue_names(settings: Settings | None = None) -> list[str]:
    settings = settings or get_settings()
    return [settings.queue_prefix + name for name in QUEUES]
