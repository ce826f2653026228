"""structlog, stamping each line with the rq job id when there is one."""
from __future__ import annotations

import logging

import structlog


def configure(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(message)s")
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso"),
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
    )


def job_logger(**context):
    try:
        from rq import get_current_job
        job = get_current_job()
    except Exception:  # noqa: BLE001 - outside a worker there is no job
        job = None
    return structlog.get_logger("settle.jobs").bind(job_id=job.id if job else "inline",
                                                    **context)
