"""Enqueue a job on rq, or run it in-process when no Redis is configured."""
from __future__ import annotations

from functools import lru_cache

from settlement.config import get_settings
from workers.jobs import JOBS, QUEUES


@lru_cache(maxsize=4)
def _redis(url: str):
    from redis import Redis
    return Redis.from_url(url)


def queue(name: str):
    from rq import Queue
    settings = get_settings()
    timeout, _ = QUEUES[name]
    return Queue(settings.queue_prefix + name, connection=_redis(settings.redis_url),
                 default_timeout=timeout)


def enqueue(job: str, *args, job_id: str | None = None):
    """Run `job` with `args`: on rq when Redis is configured, otherwise here and now.
    `job_id` makes the enqueue idempotent: the same id is not queued twice."""
    func, queue_name = JOBS[job]
    settings = get_settings()
    if not settings.redis_url:
        return func(*args)
    from rq import Retry
    _, retries = QUEUES[queue_name]
    q = queue(queue_name)
    if job_id is not None:
        existing = q.fetch_job(job_id)
        if existing is not None and existing.get_status(refresh=True) in (
                "queued", "started", "deferred", "scheduled"):
            return existing
    return q.enqueue(func, *args, job_id=job_id, retry=Retry(max=retries, interval=[1, 5, 30]))


def queue_names() -> list[str]:
    return [get_settings().queue_prefix + name for name in QUEUES]
