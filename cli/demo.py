"""`settle demo run`: the main job on the embedded default, end to end through the HTTP API
(in-process jobs when no Redis is configured): tenants, keys, retailers, share rules,
members, the sample reports of every network, and a summary of balances."""
from __future__ import annotations

import json
from pathlib import Path

import click
from sqlalchemy import text

from cli import main
from settlement.config import get_settings
from settlement.db import session_scope
from settlement.tenants.policy import load_policy
from settlement.tenants.service import apply_policy
from settlement.access.service import create_key
from settlement.money import format_amount

MEDIA = {".csv": "text/csv", ".json": "application/json", ".ndjson": "application/x-ndjson"}


@main.group()
def demo() -> None:
    """The demonstration on fixture data."""


def _keys(slug: str, policy) -> dict[str, str]:
    with session_scope() as session:
        tenant, _ = apply_policy(session, policy)
        return {role: create_key(session, tenant.id, role, f"demo {role}")
                for role in ("admin", "uploader", "operator")}


def _call(client, method: str, path: str, key: str, **kwargs):
    response = client.open(path, method=method,
                           headers={"Authorization": f"Bearer {key}"}, **kwargs)
    if response.status_code >= 400 and response.status_code != 409:
        raise click.ClickException(f"{method} {path}: {response.status_code} "
                                   f"{response.get_data(as_text=True)[:500]}")
    return response


def _reports_of(fixtures: Path, slug: str) -> list[tuple[str, Path]]:
    """(format, file) in upload order: the networks' reports, then generic ones."""
    found = []
    for path in sorted((fixtures / "reports" / slug).glob("*")):
        found.append((path.name.split("_", 1)[0], path))
    for path in sorted((fixtures / slug).glob("generic_report*.csv")):
        found.append(("generic", path))
    return found


def _load_tenant(client, fixtures: Path, policy_path: Path) -> None:
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
    for fmt, path in _reports_of(fixtures, slug):
        response = _call(client, "POST", f"/v1/reports?format={fmt}", keys["uploader"],
                         data=path.read_bytes(), content_type=MEDIA[path.suffix])
        report_id = response.get_json()["id"]
        status = _call(client, "GET", f"/v1/reports/{report_id}", keys["uploader"]).get_json()
        counts = status["counts"]
        click.echo(f"   report {report_id:>3} {fmt:<8} {path.name:<28} {status['status']:<10} "
                   + " ".join(f"{k}={v}" for k, v in counts.items() if v))
        for error in status["errors"][:3]:
            click.echo(f"        line {error['line']} {error['field']}: {error['message']}")
    again = _reports_of(fixtures, slug)[0][1]
    response = _call(client, "POST", f"/v1/reports?format={_reports_of(fixtures, slug)[0][0]}",
                     keys["uploader"], data=again.read_bytes(),
                     content_type=MEDIA[again.suffix])
    click.echo(f"   re-upload of {again.name}: HTTP {response.status_code}, "
               f"duplicate={response.get_json()['duplicate']} (nothing applied)")


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


@demo.command("run")
@click.option("--fixtures", type=click.Path(exists=True, file_okay=False),
              default="fixtures", show_default=True)
def demo_run(fixtures: str) -> None:
    """Migrate, load the fixture tenants and reports through the API, print balances."""
    from api import create_app
    from settlement.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    click.echo(f"database: {settings.database_url}; jobs: "
               f"{'rq at ' + settings.redis_url if settings.redis_url else 'in-process'}")
    root = Path(fixtures)
    client = create_app(settings).test_client()
    for policy_path in sorted((root / "tenants").glob("*")):
        _load_tenant(client, root, policy_path)
    _summary()
