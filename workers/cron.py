"""The clock: the recurring jobs, run by rq's own cron scheduler (the Procfile's `clock:`
line, `rq cron workers.cron`). Each entry enqueues a job of `workers.registry.JOBS` on its own
queue (under this deployment's queue prefix); the workers run it like any other job.

Every job here is idempotent and safe to run twice at once (two clock processes, or a run
that overlaps the next), so a second clock during a deploy does no harm. `ttl` drops a
tick that waited in its queue longer than its interval: the next tick does the same work.
"""
from __future__ import annotations

from rq import cron

from settlement.config import get_settings
from settlement.logs import configure
from workers.registry import JOBS, QUEUES, job_function

configure(get_settings().log_level)  # the clock's lines are JSON too (`rq cron` imports this)



def schedule(settings) -> dict[str, dict]:
    """job name -> when (`interval` seconds, or a `cron` expression in UTC)."""
    watchdog = {"interval": settings.watchdog_seconds}  # SETTLE_WATCHDOG_SECONDS, 60
    return {
        "watch_runs": watchdog,  # no approved run waits for a person
        "watch_reports": watchdog,  # no report stays `processing` for good
        "follow_payouts": {"cron": "40 3 * * *"},  # PayPal's unclaimed and taken-back items
        # Daily, early UTC (the evening before in the Americas, the morning in Japan): each
        # job takes "today" in every tenant's own time zone.
        "sweep_all_referrals": {"cron": "10 3 * * *"},  # ended referral windows expire
        "confirm_held": {"cron": "20 3 * * *"},  # lines past their holding period confirm
        "check_ledger": {"cron": "50 3 * * *"},  # no cent lost (and after every run)
        "fulfil_exchanges": watchdog,  # members' exchanges go out within a minute
        "expire_points": {"cron": "0 15 * * *"},  # points past their term: midnight in Japan
    }


def register_all() -> list[dict]:
    settings = get_settings()
    registered = []
    for name, when in schedule(settings).items():
        _, queue_name = JOBS[name]
        timeout, _ = QUEUES[queue_name]
        registered.append(cron.register(
            job_function(name), settings.queue_prefix + queue_name, job_timeout=timeout,
            name=settings.queue_prefix + name,
            ttl=when.get("interval") or 3600, **when))
    return registered


register_all()
