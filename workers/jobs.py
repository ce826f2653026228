"""Every job the system runs (workers/registry.py names them and their queues): each
loads ids and calls settlement/, and enqueues the jobs that follow."""
from __future__ import annotations

from settlement import failpoints
from settlement.metrics import record_report
from settlement.payouts.registry import adapter_for
from settlement.reports import service as reports
from settlement.runs import execute as runs
from settlement.runs.batches import SETTLED_BATCHES
from settlement.runs.job import start_run, tenant_if_run_completed
from workers.inline import job_engine, job_settings
from workers.logging import job_logger
from workers.queue import enqueue, report_job_id, run_batch_job_id


def process_report(tenant_id: int, report_id: int) -> dict:
    log = job_logger(tenant_id=tenant_id, report_id=report_id)
    log.info("report.processing")
    report = reports.process(job_engine(), tenant_id, report_id)
    record_report(report)
    log.info("report.processed", status=report.status, lines=report.lines,
             inserted=report.inserted, updated=report.updated, rejected=report.rejected)
    return {"report_id": report.id, "status": report.status}


def execute_run(tenant_id: int, run_id: int) -> dict:
    """Start the run, then hand each batch to its own job (on rq) or work them here
    (in-process); each batch reserves its items when it is submitted."""
    log = job_logger(tenant_id=tenant_id, run_id=run_id)
    settings = job_settings()
    batch_ids = start_run(job_engine(), tenant_id, run_id)
    failpoints.reach("run.started")
    log.info("run.executing", batches=len(batch_ids))
    failures = []
    for batch_id in batch_ids:
        try:
            enqueue("run_batch", tenant_id, batch_id, settings=settings,
                    job_id=run_batch_job_id(settings, tenant_id, batch_id))
        except Exception as exc:  # noqa: BLE001 - in-process: one batch's trouble must not
            # keep the others from being paid; the failed one is resumed later.
            log.exception("run.batch_failed", batch_id=batch_id)
            failures.append((batch_id, exc))
    if failures:
        raise RuntimeError(f"{len(failures)} batch(es) of run {run_id} failed: "
                           + "; ".join(f"{b}: {e}" for b, e in failures))
    return {"run_id": run_id, "batches": batch_ids}


def run_batch(tenant_id: int, batch_id: int) -> dict:
    log = job_logger(tenant_id=tenant_id, batch_id=batch_id)
    settings = job_settings()
    status = runs.run_batch(job_engine(), tenant_id, batch_id,
                            lambda method: adapter_for(method, settings), settings.outbox_dir,
                            poll_interval=settings.payout_poll_seconds,
                            max_polls=settings.payout_max_polls)
    log.info("run.batch", status=status)
    if status in SETTLED_BATCHES:
        _check_ledger_if_run_completed(tenant_id, batch_id, settings)
    return {"batch_id": batch_id, "status": status}


def _check_ledger_if_run_completed(tenant_id: int, batch_id: int, settings) -> None:
    """The ledger check after every completed run (the batch job that completes the last
    batch, or a late one: the job id keeps it to one while it waits)."""
    slug = tenant_if_run_completed(job_engine(), tenant_id, batch_id)
    if slug is not None:
        enqueue("check_ledger", slug, settings=settings,
                job_id=f"{settings.queue_prefix}ledger-check-{tenant_id}")


def sweep_referrals(tenant_id: int, as_of: str | None = None) -> dict:
    """Expire the referral windows that ended before `as_of` (an ISO date; default: today in
    the tenant's timezone) and catch up on anything due. Safe to run at any time, again."""
    import datetime as dt

    from settlement.referrals.service import sweep_tenant

    log = job_logger(tenant_id=tenant_id)
    result = sweep_tenant(job_engine(), tenant_id,
                          dt.date.fromisoformat(as_of) if as_of else None)
    log.info("referrals.swept", as_of=result["as_of"], expired=result["expired"])
    return result


def sweep_all_referrals() -> dict:
    """The referral sweep of every tenant, daily on the clock (each tenant at today's date in
    its own time zone). Safe to run at any time, again."""
    from sqlalchemy import select

    from settlement.db import tenant_session
    from settlement.models import Tenant
    from settlement.referrals.service import sweep_tenant

    with tenant_session(job_engine()) as session:
        tenant_ids = session.scalars(select(Tenant.id).order_by(Tenant.id)).all()
    expired = {}
    for tenant_id in tenant_ids:
        expired[tenant_id] = sweep_tenant(job_engine(), tenant_id)["expired"]
    job_logger().info("referrals.swept", tenants=len(tenant_ids), expired=expired)
    return {"expired": expired}


def watch_reports() -> dict:
    """The reports' watchdog, run every minute by the clock: enqueue again every report
    whose job died, fail those whose jobs keep dying. Safe to run at any time, again."""
    log = job_logger()
    settings = job_settings()

    def requeue(tenant_id: int, report_id: int) -> None:
        enqueue("process_report", tenant_id, report_id, settings=settings,
                job_id=report_job_id(settings, tenant_id, report_id))

    watched = reports.requeue_stalled_reports(job_engine(), requeue)
    if watched.requeued or watched.abandoned:
        log.info("reports.watched", requeued=len(watched.requeued),
                 abandoned=len(watched.abandoned))
    return {"requeued": watched.requeued, "abandoned": watched.abandoned}


def watch_runs() -> dict:
    """The runs' watchdog, run every minute by the clock: every approved or executing run
    is started and each open batch that no live job holds gets its batch job again (see
    settlement/runs/watchdog.py). Safe to run at any time, twice at once."""
    from settlement.runs.watchdog import watch_runs as watch

    log = job_logger()
    settings = job_settings()

    def resume(tenant_id: int, batch_id: int) -> None:
        enqueue("run_batch", tenant_id, batch_id, settings=settings,
                job_id=run_batch_job_id(settings, tenant_id, batch_id))

    report = watch(job_engine(), resume)
    if report.resumed or report.failed:
        log.info("runs.watched", runs=report.runs, resumed=report.resumed,
                 held=report.held, failed=report.failed)
    return report.as_dict()


def confirm_held(as_of: str | None = None, tenant: str | None = None) -> dict:
    """Confirm the lines whose holding period is over (settlement/commissions/holds.py), run
    daily by the clock: every tenant (or the one named by slug), at today's date in its
    time zone or at `as_of` (an ISO date). Safe to run at any time, again."""
    import datetime as dt

    from settlement.commissions.holds import confirm_held_for_tenants

    on = dt.date.fromisoformat(as_of) if as_of else None
    confirmed = confirm_held_for_tenants(job_engine(), tenant, on)
    if any(confirmed.values()):
        job_logger().info("commissions.hold_ended", confirmed=confirmed)
    return {"confirmed": confirmed}


def check_ledger(tenant: str | None = None) -> dict:
    """The "no cent lost" check (settlement/ledger/check.py) of every tenant, or the one
    named by slug: run daily and after each completed run. A mismatch is logged as an
    error and shown by GET /v1/health/ledger. Read-only: safe to run at any time, twice."""
    from settlement.ledger.check import check_tenants

    results = check_tenants(job_engine(), tenant, "job:check_ledger")
    for result in results:
        if not result.ok:
            job_logger(tenant_id=result.tenant_id).error(
                "ledger.mismatch", unbalanced_entries=len(result.unbalanced_entries),
                tenant_totals=result.tenant_totals,
                member_mismatches=result.member_mismatch_count)
    return {"checked": len(results), "failed": [r.tenant_id for r in results if not r.ok]}


def follow_payouts() -> dict:
    """PayPal to the end, daily on the clock: every settled PayPal batch with unclaimed items,
    or paid within the follow window, is read again (settlement/runs/follow.py)."""
    from settlement.runs.follow import follow_batches

    log = job_logger()
    settings = job_settings()
    report = follow_batches(job_engine(), lambda method: adapter_for(method, settings),
                            settings.outbox_dir)
    log.info("payouts.followed", batches=len(report.followed), failed=report.failed)
    return report.as_dict()


def follow_batch(tenant_id: int, batch_id: int) -> dict:
    """One settled batch read again now (a PayPal webhook event named one of its items)."""
    from settlement.runs.follow import follow_batch as follow

    settings = job_settings()
    status = follow(job_engine(), tenant_id, batch_id, lambda method: adapter_for(method, settings),
                    settings.outbox_dir)
    job_logger(tenant_id=tenant_id, batch_id=batch_id).info("payouts.followed", status=status)
    return {"batch_id": batch_id, "status": status}


def fulfil_exchanges() -> dict:
    """Every point site's requested exchanges handed to their partners, and open exchange
    batches moved on (settlement/exchanges/fulfil.py). Safe to run at any time, again."""
    from settlement.exchanges.daily import fulfil_all

    result = fulfil_all(job_engine(), job_settings())
    job_logger().info("exchanges.fulfilled", batches=result)
    return result


def expire_points() -> dict:
    """Daily: every point site's points past their term move to breakage, one entry per
    member and date (settlement/exchanges/expiry.py)."""
    from settlement.exchanges.daily import expire_all

    result = expire_all(job_engine())
    job_logger().info("points.expired", members=result)
    return result

