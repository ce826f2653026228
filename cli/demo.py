"""`settle demo run`: the main job on the embedded default, end to end through the HTTP API
(in-process jobs when no Redis is configured): tenants, keys, retailers, share rules,
members, the sample reports of every network, and a summary of balances."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from sqlalchemy import text

from cli import main
from cli.sandbox_extra import require_sandbox_extra
from settlement.config import get_settings
from settlement.db import session_scope
from settlement.tenants.policy import load_policy
from settlement.tenants.service import apply_policy
from settlement.access.service import create_key
from settlement.money import format_amount
from settlement.states import ReferralStatus

MEDIA = {".csv": "text/csv", ".json": "application/json", ".ndjson": "application/x-ndjson"}


@main.group()
def demo() -> None:
    """The demonstration on fixture data."""
    require_sandbox_extra()


def _keys(slug: str, policy) -> dict[str, str]:
    with session_scope() as session:
        tenant, _ = apply_policy(session, policy)
        return {role: create_key(session, tenant.id, role, f"demo {role}")
                for role in ("admin", "uploader", "operator", "approver")}


def _call(client, method: str, path: str, key: str, **kwargs):
    response = client.open(path, method=method,
                           headers={"Authorization": f"Bearer {key}"}, **kwargs)
    if response.status_code >= 400 and response.status_code != 409:
        raise click.ClickException(f"{method} {path}: {response.status_code} "
                                   f"{response.get_data(as_text=True)[:500]}")
    return response


def _uploads_of(fixtures: Path, slug: str) -> list[tuple[str, Path, str | None]]:
    """(format, file, as_of) in upload order: the tenant's uploads.json (the weeks before
    payout day, replayed), or else every sample report, as of now."""
    manifest = fixtures / slug / "uploads.json"
    if manifest.exists():
        return [(u["format"], fixtures / u["file"], u.get("as_of"))
                for u in json.loads(manifest.read_text())]
    found = [(p.name.split("_", 1)[0], p, None)
             for p in sorted((fixtures / "reports" / slug).glob("*"))]
    found += [("generic", p, None) for p in sorted((fixtures / slug).glob("generic_report*.csv"))]
    return found


def _local_day(as_of: str | None, zone: str) -> dt.date:
    moment = dt.datetime.fromisoformat(as_of) if as_of else dt.datetime.now(dt.timezone.utc)
    return moment.astimezone(ZoneInfo(zone)).date()


def _clock_between(settings, slug: str, after: dt.date | None, before: dt.date) -> None:
    """The clock's daily confirm_held pass on each day strictly between two uploads (an
    upload ends the holds that are over by its own as-of date)."""
    from workers.queue import enqueue

    if after is None:
        return
    day = after + dt.timedelta(days=1)
    while day < before:
        confirmed = enqueue("confirm_held", day.isoformat(), slug,
                            settings=settings)["confirmed"].get(slug, 0)
        if confirmed:
            click.echo(f"   clock: confirm_held as of {day}: {confirmed} line(s) past their "
                       "holding period confirmed")
        day += dt.timedelta(days=1)


def _load_tenant(client, settings, fixtures: Path, policy_path: Path) -> dict[str, str]:
    policy = load_policy(policy_path)
    slug = policy.slug
    keys = _keys(slug, policy)
    click.echo(f"\n== {policy.name} ({slug}, {policy.currency})")
    for retailer in json.loads((fixtures / slug / "retailers.json").read_text()):
        body = {k: retailer[k] for k in ("name", "category", "network_ids") if k in retailer}
        _call(client, "PUT", f"/v1/retailers/{retailer['slug']}", keys["admin"], json=body)
    rules = json.loads((fixtures / slug / "share_rules.json").read_text())
    for rule in rules:
        _call(client, "POST", "/v1/share-rules", keys["admin"], json=rule)
    members = (fixtures / slug / "members.csv").read_bytes()
    result = _call(client, "POST", "/v1/members/import", keys["admin"], data=members,
                   content_type="text/csv").get_json()
    click.echo(f"   retailers and {len(rules)} share rules loaded; members: {result}")
    held_through = None  # the clock has run up to this day
    for fmt, path, as_of in _uploads_of(fixtures, slug):
        day = _local_day(as_of, policy.timezone)
        _clock_between(settings, slug, held_through, day)
        held_through = day
        query = f"/v1/reports?format={fmt}" + (f"&as_of={as_of}" if as_of else "")
        response = _call(client, "POST", query, keys["uploader"], data=path.read_bytes(),
                         content_type=MEDIA[path.suffix])
        report_id = response.get_json()["id"]
        status = _call(client, "GET", f"/v1/reports/{report_id}", keys["uploader"]).get_json()
        counts = status["counts"]
        click.echo(f"   report {report_id:>3} {fmt:<8} {path.name:<28} "
                   f"as of {(as_of or 'now')[:10]:<10} {status['status']:<10} "
                   + " ".join(f"{k}={v}" for k, v in counts.items() if v))
        for error in status["errors"][:3]:
            click.echo(f"        line {error['line']} {error['field']}: {error['message']}")
    fmt, again, as_of = _uploads_of(fixtures, slug)[0]
    response = _call(client, "POST", f"/v1/reports?format={fmt}", keys["uploader"],
                     data=again.read_bytes(), content_type=MEDIA[again.suffix])
    click.echo(f"   re-upload of {again.name}: HTTP {response.status_code}, "
               f"duplicate={response.get_json()['duplicate']} (nothing applied)")
    return keys


def _summary() -> None:
    click.echo("\n== Balances by tenant (from the ledger's postings)")
    with session_scope() as session:
        tenants = session.execute(text("SELECT id, slug, currency FROM tenants ORDER BY id")).all()
        for tenant_id, slug, currency in tenants:
            digits = 0 if currency == "JPY" else 2
            money = lambda v: format_amount(int(v or 0), digits)  # noqa: E731
            totals = dict(session.execute(text(
                "SELECT account, sum(amount) FROM postings WHERE tenant_id = :t "
                "GROUP BY account"), {"t": tenant_id}).all())
            members = session.execute(text(
                "SELECT count(DISTINCT member_id) FROM postings WHERE tenant_id = :t "
                "AND member_id IS NOT NULL"), {"t": tenant_id}).scalar_one()
            click.echo(f"   {slug} ({currency}): members with money {members}; "
                       f"pending {money(totals.get('pending'))}, "
                       f"available {money(totals.get('available'))}, "
                       f"reserved {money(totals.get('reserved'))}, "
                       f"paid {money(totals.get('paid'))}, "
                       f"unattributed {money((totals.get('unattributed_pending') or 0) + (totals.get('unattributed_available') or 0))}, "
                       f"portal margin {money(totals.get('portal_margin'))}, "
                       f"owed by networks {money(-(totals.get('network_receivable') or 0))}")
            for status, n, sale, commission, share in session.execute(text(
                    "SELECT status, count(*), sum(sale_amount), sum(commission_amount), "
                    "sum(share_amount) FROM commissions WHERE tenant_id = :t "
                    "GROUP BY status ORDER BY status"), {"t": tenant_id}):
                click.echo(f"      {status:<10} {n:>5} lines  sales {money(sale):>12}  "
                           f"commission {money(commission):>10}  cash back {money(share):>10}")
            bad = session.execute(text(
                "SELECT count(*) FROM (SELECT entry_id FROM postings WHERE tenant_id = :t "
                "GROUP BY entry_id, currency HAVING sum(amount) <> 0) x"),
                {"t": tenant_id}).scalar_one()
            click.echo(f"      ledger: every entry balances: {'yes' if bad == 0 else 'NO'}")


def _settle(client, settings, keys: dict[str, str], payout_date: str) -> None:
    """Plan (operator), approve (approver: four eyes) and execute the run; answer the points
    partners' files from their sandbox and collect the answers."""
    from sandboxes.partners import respond, unanswered

    click.echo(f"\n== Settlement run of {payout_date} (us-cashback)")
    planned = _call(client, "POST", "/v1/settlement-runs", keys["operator"],
                    json={"payout_date": payout_date})
    run = planned.get_json()
    if planned.status_code == 409:
        click.echo(f"   {run['detail']}")
        return
    click.echo(f"   planned run {run['id']} (cut-off {run['cutoff_date']}), "
               f"plan {run['plan_hash'][:12]}...: {run['totals']['members']} members, "
               f"{run['totals']['amount']} {run.get('currency', '')}")
    for method, t in sorted(run["totals"]["by_method"].items()):
        click.echo(f"      pay {method:<8} {t['members']:>5} members {t['amount']:>12}"
                   + (f"  {t['points']:>9} points" if t["points"] else ""))
    for reason, t in sorted(run["skipped"].items()):
        click.echo(f"      skip {reason:<24} {t['members']:>5} members {t['amount']:>10}")
    refused = client.post(f"/v1/settlement-runs/{run['id']}/approve", json={},
                          headers={"Authorization": f"Bearer {keys['approver']}"})
    click.echo(f"   approve: HTTP {refused.status_code} (an approver key; "
               f"the operator's would get 403)")
    outbox = Path(settings.outbox_dir)
    for folder, partner, key in unanswered(outbox):
        respond(folder, partner, key)
        click.echo(f"   {partner} answered its transfer file {key}")
    from workers.queue import enqueue
    tenant_id = _tenant_id(client, keys)
    with session_scope() as session:  # the API's run number -> the job's internal id
        from settlement.runs.plan import run_id_of
        run_id = run_id_of(session, tenant_id, run["id"])
    enqueue("execute_run", tenant_id, run_id, settings=settings)
    done = _call(client, "GET", f"/v1/settlement-runs/{run['id']}", keys["operator"]).get_json()
    click.echo(f"   run {done['id']}: {done['status']}; items {done['progress']['by_status']}")
    failed = _call(client, "GET", f"/v1/settlement-runs/{run['id']}/items?status=failed",
                   keys["operator"]).get_json()["items"]
    click.echo(f"   failures: {len(failed)} (their amounts are back in the members' balances)")
    for item in failed[:8]:
        click.echo(f"      failed: {item['method']:<8} {item['amount']:>8} "
                   f"{item['failure_reason']}")
    report = client.get(f"/v1/settlement-runs/{run['id']}/report.csv",
                        headers={"Authorization": f"Bearer {keys['operator']}"})
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"run-{run['id']}-report.csv"
    path.write_bytes(report.data)
    rows = report.data.count(b"\n") - 1
    click.echo(f"   run report: {path} ({rows} rows)")
    click.echo("   payout files: " + ", ".join(sorted(
        str(p.relative_to(outbox)) for p in outbox.rglob("*.csv") if "report" not in p.name)))


def _referrals(client, settings, keys: dict[str, dict[str, str]], fixtures: Path,
               as_of: str) -> None:
    """Sweep each tenant's referral windows (the worker job) and show where referrals stand:
    counts, bonuses, and each featured referral as GET /v1/members/{id}/referrals shows it."""
    from settlement.referrals.views import summary
    from workers.queue import enqueue

    click.echo(f"\n== Referrals (sweep_referrals job as of {as_of})")
    for slug, tenant_keys in keys.items():
        tenant_id = _tenant_id(client, tenant_keys)
        swept = enqueue("sweep_referrals", tenant_id, as_of, settings=settings)
        with session_scope() as session:
            currency = session.execute(text("SELECT currency FROM tenants WHERE id = :t"),
                                       {"t": tenant_id}).scalar_one()
            facts = summary(session, tenant_id)
        money = lambda v: format_amount(v, 0 if currency == "JPY" else 2)  # noqa: E731
        statuses = ", ".join(f"{s} {n}" for s, n in swept["statuses"].items() if n)
        click.echo(f"   {slug}: {swept['expired']} windows expired by the sweep; "
                   f"referrals: {statuses}")
        reasons = ", ".join(f"{s} {r}: {n}" for (s, r), n in sorted(facts["reasons"].items())
                            if s != ReferralStatus.EXPIRED)
        if reasons:
            click.echo(f"      held or refused: {reasons}")
        for (side, status), (n, amount, points) in sorted(facts["bonuses"].items()):
            click.echo(f"      {side:<8} bonuses {status:<8} {n:>4}  {money(amount):>10} {currency}"
                       + (f" (of which {points} points owed)" if points else ""))
        click.echo(f"      referral expense in the ledger: {money(facts['expense'])} {currency}")
        featured = json.loads((fixtures / slug / "featured.json").read_text())
        for case in (f for f in featured if "referral" in f):
            view = _call(client, "GET", f"/v1/members/{case['member']}/referrals",
                         tenant_keys["operator"]).get_json()["referrals"]
            mine = [r for r in view if r["role"] == "friend"][0]
            pair = "; ".join(f"{side} {b['member']} {b['amount']}"
                             + (f" ({b['points']} {b['points_method']} points)"
                                if b["points"] else "") + f" {b['status']}"
                             for side, b in sorted(mine["bonuses"].items()))
            extra = (mine["reason"]["message"] if mine["reason"] else mine["stage"] or "")
            voided = f"; {len(mine['voided']) // 2} pair(s) voided" if mine["voided"] else ""
            click.echo(f"      {case['case']:<32} {case['member']} {mine['status']:<8} "
                       f"{pair or extra}{voided}")


def _tenant_id(client, keys) -> int:
    from settlement.access.service import authenticate
    with session_scope() as session:
        return authenticate(session, keys["operator"]).tenant_id


@demo.command("run")
@click.option("--fixtures", type=click.Path(exists=True, file_okay=False),
              default="fixtures", show_default=True)
@click.option("--payout-date", default="2026-11-15", show_default=True)
@click.option("--referrals-as-of", default="2026-11-24", show_default=True,
              help="the day the referral sweep runs (the fixtures' today)")
def demo_run(fixtures: str, payout_date: str, referrals_as_of: str) -> None:
    """Migrate, load the fixture tenants and reports through the API, plan, approve and
    execute the US tenant's payout run against local sandboxes, print balances."""
    from api import create_app
    from settlement.migrate import upgrade
    from sandboxes.paypal import serve

    base = get_settings()
    paypal, paypal_url = serve(client_id=base.paypal_client_id,
                               client_secret=base.paypal_client_secret, polls_per_step=0)
    # Warnings only: the demo prints its own account, an access-log line per call would
    # drown it.
    settings = base.model_copy(update={"paypal_base_url": paypal_url,
                                       "payout_poll_seconds": 0.05, "payout_max_polls": 40,
                                       "log_level": "WARNING"})
    upgrade(settings.database_url)
    click.echo(f"database: {settings.database_url}; jobs: "
               f"{'rq at ' + settings.redis_url if settings.redis_url else 'in-process'}; "
               f"PayPal sandbox at {paypal_url}; outbox: {settings.outbox_dir}/")
    root = Path(fixtures)
    client = create_app(settings).test_client()
    keys = {}
    for policy_path in sorted((root / "tenants").glob("*")):
        keys[policy_path.stem] = _load_tenant(client, settings, root, policy_path)
    if "us-cashback" in keys:
        _settle(client, settings, keys["us-cashback"], payout_date)
    _referrals(client, settings, keys, root, referrals_as_of)
    from cli.demo_exchanges import exchanges_demo
    exchanges_demo(client, settings, keys, root)
    _summary()
    paypal.shutdown()
    click.echo("\n== Console: `make console` serves this database at "
               "http://127.0.0.1:8000/console/ and prints keys to sign in with")
