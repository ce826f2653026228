"""The rq queues as an admin sees them in the console: how many jobs wait, run, are
scheduled or failed in each queue, the workers, and the tenant's own failed jobs (with
requeue). Queues are shared by every tenant: counts are totals, but a failed job is shown
and requeued only for the tenant it belongs to (a job's first argument is its tenant)."""
from __future__ import annotations

from dataclasses import dataclass

from settlement.config import Settings
from workers.registry import QUEUES
from workers.queue import _redis, queue, queue_names

FAILED_SHOWN = 100


@dataclass(frozen=True)
class FailedJob:
    id: str
    queue: str
    job: str
    args: tuple
    ended_at: object
    error: str


def overview(settings: Settings) -> list[dict]:
    rows = []
    for name in QUEUES:
        q = queue(name, settings)
        rows.append({"queue": name, "queued": q.count,
                     "started": q.started_job_registry.count,
                     "scheduled": q.scheduled_job_registry.count,
                     "failed": q.failed_job_registry.count})
    return rows


def workers(settings: Settings) -> list[dict]:
    from rq import Worker
    ours = set(queue_names(settings))
    found = []
    for worker in Worker.all(connection=_redis(settings.redis_url)):
        names = worker.queue_names()
        if ours & set(names):
            found.append({"name": worker.name, "state": worker.get_state(),
                          "queues": [n[len(settings.queue_prefix):] for n in names
                                     if n in ours],
                          "last_heartbeat": worker.last_heartbeat})
    return found


def _belongs(job, tenant_id: int) -> bool:
    return bool(job.args) and job.args[0] == tenant_id


def failed_jobs(settings: Settings, tenant_id: int) -> list[FailedJob]:
    found = []
    for name in QUEUES:
        q = queue(name, settings)
        ids = q.failed_job_registry.get_job_ids()
        for job in q.job_class.fetch_many(ids, connection=q.connection):
            if job is None or not _belongs(job, tenant_id):
                continue
            result = job.latest_result()
            error = ((result.exc_string if result is not None else None) or "").strip() \
                .splitlines()
            found.append(FailedJob(job.id, name, (job.func_name or "").rsplit(".", 1)[-1],
                                   tuple(job.args), job.ended_at,
                                   error[-1][:300] if error else ""))
            if len(found) >= FAILED_SHOWN:
                return found
    return found


def requeue(settings: Settings, tenant_id: int, job_id: str) -> bool:
    """Put the tenant's failed job back on its queue; False if it is not one."""
    for name in QUEUES:
        q = queue(name, settings)
        if job_id not in q.failed_job_registry.get_job_ids():
            continue
        job = q.fetch_job(job_id)
        if job is None or not _belongs(job, tenant_id):
            return False
        q.failed_job_registry.requeue(job_id)
        return True
    return False
