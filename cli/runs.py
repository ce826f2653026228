"""`settle run plan|show|approve|cancel|execute|reconcile`: the operators' CLI, mirroring
the HTTP API."""
from __future__ import annotations


import getpass
import json
import time

import click

from cli import main
from settlement.config import get_settings
from settlement.db import get_engine, session_scope, set_tenant
from settlement.money import format_amount
from settlement.payouts.registry import adapter_for
from settlement.runs import plan as runs
from settlement.runs.batches import batch_views
from settlement.runs.reconcile import reconcile_run
from settlement.runs.report import skipped_members
from settlement.states import RunStatus
from settlement.tenants.service import TenantNotFound, policy_of, tenant_by_slug
from workers.queue import enqueue, run_job_id


def _principal(name: str | None) -> str:
    return name or f"cli:{getpass.getuser()}"


def _tenant(session, slug: str):
    try:
        tenant = tenant_by_slug(session, slug)
    except TenantNotFound as exc:
        raise click.ClickException(str(exc))
    set_tenant(session, tenant.id)
    return tenant


def _run_id(session, tenant, number: int) -> int:
    """Commands name runs by the tenant's run number, as the API does."""
    try:
        return runs.run_id_of(session, tenant.id, number)
    except runs.RunError as exc:
        _fail(exc)


def _show(session, tenant, number: int) -> dict:
    run_id = _run_id(session, tenant, number)
    run = runs.get_run(session, tenant.id, run_id)
    totals = runs.run_totals(session, tenant.id, run_id)
    digits = policy_of(tenant).minor_digits
    money = lambda v: format_amount(v, digits)  # noqa: E731
    return {"id": run.number, "status": run.status, "payout_date": run.payout_date.isoformat(),
            "cutoff_date": run.cutoff_date.isoformat(), "plan_hash": run.plan_hash,
            "planned_by": run.planned_by, "approved_by": run.approved_by,
            "totals": {"members": totals["members"], "amount": money(totals["amount"]),
                       "by_method": {m: {**v, "amount": money(v["amount"])}
                                     for m, v in totals["by_method"].items()}},
            "skipped": {r: {**v, "amount": money(v["amount"])}
                        for r, v in totals["skipped"].items()},
            "progress": totals["progress"],
            "batches": [{**b, "amount": money(b["amount"])}
                        for b in batch_views(session, tenant.id, run_id)]}


def _fail(exc: runs.RunError):
    raise click.ClickException(f"{exc.code}: {exc.message}")


@main.group()
def run() -> None:
    """Settlement runs."""


@run.command("plan")
@click.option("--tenant", "slug", required=True)
@click.option("--date", "payout_date", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--by", default=None, help="who plans (default cli:<user>)")
def plan_cmd(slug, payout_date, by):
    """Plan the run of a payout date and print it."""
    with session_scope() as session:
        tenant = _tenant(session, slug)
        try:
            planned = runs.plan_run(session, tenant.id, payout_date.date(), _principal(by))
        except runs.RunError as exc:
            _fail(exc)
        click.echo(json.dumps(_show(session, tenant, planned.number), indent=2))


@run.command("show")
@click.option("--tenant", "slug", required=True)
@click.option("--skipped", is_flag=True, help="list the members the plan skipped instead")
@click.option("--reason", default=None, type=click.Choice(runs.SKIP_REASONS),
              help="with --skipped: only this reason")
@click.argument("run_id", type=int)
def show_cmd(slug, skipped, reason, run_id):
    with session_scope() as session:
        tenant = _tenant(session, slug)
        try:
            if skipped:
                _echo_skipped(session, tenant, run_id, reason)
                return
            click.echo(json.dumps(_show(session, tenant, run_id), indent=2))
        except runs.RunError as exc:
            _fail(exc)


def _echo_skipped(session, tenant, number: int, reason: str | None) -> None:
    """One tab-separated line per skipped member: member, reason, amount (left in the
    balance), in member order, a page at a time (a run may skip a million)."""
    run_id = _run_id(session, tenant, number)
    digits = policy_of(tenant).minor_digits
    click.echo("member\treason\tamount")
    after = 0
    while page := skipped_members(session, tenant.id, run_id, reason=reason, after=after,
                                  limit=10_000):
        for s in page:
            click.echo(f"{s['member']}\t{s['reason']}\t{format_amount(s['amount'], digits)}")
        after = page[-1]["member_id"]


@run.command("approve")
@click.option("--tenant", "slug", required=True)
@click.option("--by", default=None, help="who approves (must differ from the planner)")
@click.option("--plan-hash", default=None, help="the plan_hash you reviewed")
@click.option("--execute/--no-execute", default=True, show_default=True)
@click.argument("run_id", type=int)
def approve_cmd(slug, by, plan_hash, execute, run_id):
    """Approve a planned run (four eyes), then execute it."""
    with session_scope() as session:
        tenant = _tenant(session, slug)
        try:
            runs.approve_run(session, tenant.id, _run_id(session, tenant, run_id),
                             _principal(by), plan_hash)
        except runs.RunError as exc:
            _fail(exc)
    click.echo(f"run {run_id} approved")
    if execute:
        _execute(slug, run_id)


@run.command("cancel")
@click.option("--tenant", "slug", required=True)
@click.option("--by", default=None)
@click.argument("run_id", type=int)
def cancel_cmd(slug, by, run_id):
    with session_scope() as session:
        tenant = _tenant(session, slug)
        try:
            runs.cancel_run(session, tenant.id, _run_id(session, tenant, run_id),
                            _principal(by))
        except runs.RunError as exc:
            _fail(exc)
    click.echo(f"run {run_id} cancelled")


@run.command("execute")
@click.option("--tenant", "slug", required=True)
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="follow the run with a progress bar")
@click.argument("run_id", type=int)
def execute_cmd(slug, wait, run_id):
    """Execute an approved run, or resume one (submits what is pending, asks providers about
    what is unknown, collects outcomes)."""
    _execute(slug, run_id, wait)


def _execute(slug: str, number: int, wait: bool = True) -> None:
    settings = get_settings()
    with session_scope() as session:
        tenant = _tenant(session, slug)
        tenant_id, run_id = tenant.id, _run_id(session, tenant, number)
    try:
        enqueue("execute_run", tenant_id, run_id, settings=settings,
                job_id=run_job_id(settings, tenant_id, run_id) + f"-{int(time.time())}")
    except runs.RunError as exc:
        _fail(exc)
    if not wait:
        return
    with session_scope() as session:
        tenant = _tenant(session, slug)
        total = runs.run_totals(session, tenant.id, run_id)["progress"]["items"]
    with click.progressbar(length=max(total, 1), label=f"run {number}") as bar:
        seen = 0
        for _ in range(3600):
            with session_scope() as session:
                tenant = _tenant(session, slug)
                state = runs.get_run(session, tenant.id, run_id).status
                progress = runs.run_totals(session, tenant.id, run_id)["progress"]
            finished = progress["done"] + progress["failed"]
            bar.update(finished - seen)
            seen = finished
            done = state in (RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_FAILURES)
            if done or not settings.redis_url:
                break
            time.sleep(1)
    with session_scope() as session:
        tenant = _tenant(session, slug)
        click.echo(json.dumps(_show(session, tenant, number)["progress"]))


@run.command("reconcile")
@click.option("--tenant", "slug", required=True)
@click.argument("run_id", type=int)
def reconcile_cmd(slug, run_id):
    """Compare our items with the providers' records; list every mismatch (exit 1 if any)."""
    settings = get_settings()
    with session_scope() as session:
        tenant = _tenant(session, slug)
        tenant_id, run_id = tenant.id, _run_id(session, tenant, run_id)
    mismatches = reconcile_run(get_engine(), tenant_id, run_id,
                               lambda method: adapter_for(method, settings), settings.outbox_dir)
    for m in mismatches:
        click.echo(f"batch {m.batch_id} item {m.item_id}: ours {m.ours}, provider "
                   f"{m.provider}: {m.note}")
    click.echo(f"{len(mismatches)} mismatch(es)")
    if mismatches:
        raise SystemExit(1)




@main.group()
def referrals() -> None:
    """Referral bonuses."""


@referrals.command("sweep")
@click.option("--tenant", "slug", required=True)
@click.option("--as-of", default=None, help="ISO date (default: today in the tenant's zone)")
def referrals_sweep(slug, as_of):
    """Expire ended referral windows and grant what is due (run it daily, e.g. from cron)."""
    settings = get_settings()
    with session_scope() as session:
        tenant_id = _tenant(session, slug).id
    result = enqueue("sweep_referrals", tenant_id, as_of, settings=settings)
    click.echo(json.dumps(result if isinstance(result, dict) else {"queued": result.id},
                          default=str))
