"""Every job the system runs, by name: the function that does it (workers/jobs.py) and its
queue, with each queue's limits. A function is named by its import path, as rq stores it:
workers/queue.py enqueues a job without importing it, so the jobs, which enqueue others,
import workers/queue.py and nothing imports back."""
from __future__ import annotations

from importlib import import_module
from typing import Callable

# queue name -> (job timeout seconds, retries)
QUEUES = {"reports": (3600, 3), "payouts": (3600, 5), "referrals": (3600, 3)}

# job name -> (function's import path, queue name)
JOBS = {"process_report": ("workers.jobs.process_report", "reports"),
        "execute_run": ("workers.jobs.execute_run", "payouts"),
        "run_batch": ("workers.jobs.run_batch", "payouts"),
        "sweep_referrals": ("workers.jobs.sweep_referrals", "referrals"),
        "sweep_all_referrals": ("workers.jobs.sweep_all_referrals", "referrals"),
        "watch_reports": ("workers.jobs.watch_reports", "reports"),
        "watch_runs": ("workers.jobs.watch_runs", "payouts"),
        "follow_payouts": ("workers.jobs.follow_payouts", "payouts"),
        "follow_batch": ("workers.jobs.follow_batch", "payouts"),
        "confirm_held": ("workers.jobs.confirm_held", "reports"),
        "check_ledger": ("workers.jobs.check_ledger", "reports"),
        "fulfil_exchanges": ("workers.jobs.fulfil_exchanges", "payouts"),
        "expire_points": ("workers.jobs.expire_points", "referrals")}


def job_function(name: str) -> Callable:
    module, _, function = JOBS[name][0].rpartition(".")
    return getattr(import_module(module), function)
