"""What a job runs against: the database and settings of its caller when it runs
in-process (workers/queue.py sets them for the job's duration), else the process's own."""
from __future__ import annotations

from contextvars import ContextVar

from settlement.config import Settings, get_settings
from settlement.db import get_engine

inline_engine: ContextVar = ContextVar("inline_engine", default=None)
inline_settings: ContextVar = ContextVar("inline_settings", default=None)


def job_engine():
    return inline_engine.get() or get_engine()


def job_settings() -> Settings:
    return inline_settings.get() or get_settings()
