"""structlog, stamping each line with the rq job id (and, through contextvars, the id of
the request that enqueued the job) when there is one."""
from __future__ import annotations

import structlog


def job_logger(**context):
    try:
        from rq import get_current_job
        job = get_current_job()
    except Exception:  # noqa: BLE001 - outside a worker there is no job
        job = None
    if job is not None:
        context.setdefault("request_id", (job.meta or {}).get("request_id"))
    return structlog.get_logger("settle.jobs").bind(job_id=job.id if job else "inline",
                                                    **{k: v for k, v in context.items()
                                                       if v is not None})
