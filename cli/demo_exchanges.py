"""The point sites' part of `settle demo run`: members of jp-points exchange points through
every exit on Thursday 2026-11-19 (the campaign runs out, Monday 23rd's holiday pushes a
bank transfer's crediting date), the partners answer, the days pass until each exchange is
credited, the bank returns a transfer after its date, points expire; then jp-tenpoints, at
10 points per yen."""
from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import click
from sqlalchemy import text

from settlement.db import get_engine, session_scope
from settlement.exchanges import zengin
from settlement.exchanges.amazon import IncentivesClient
from settlement.exchanges.codes import code_key
from settlement.exchanges.daily import expire_all
from settlement.exchanges.expiry import forecast
from settlement.exchanges.fulfil import Partners, fulfil_exchanges
from settlement.exchanges.quote import ExchangeError
from settlement.exchanges.service import cancel_exchange, request_exchange
from settlement.states import ExchangeStatus
from sandboxes import partners as partner_sandbox
from sandboxes.amazon import serve
from settlement.tenants.policy import load_policy
from settlement.tenants.service import apply_policy, policy_of, tenant_by_slug

JST = dt.timezone(dt.timedelta(hours=9))
ASKED_AT = dt.datetime(2026, 11, 19, 10, 0, tzinfo=JST)  # Thursday; Monday 23rd is a holiday
BANK = {"bank_code": "0005", "branch_code": "123", "account_type": "ordinary",
        "account_number": "7654321", "account_name": "スズキ リン"}


def _richest(slug: str, count: int) -> list[tuple[int, str, int]]:
    """(member id, external id, available yen) of the members holding the most."""
    with session_scope() as session:
        return [tuple(r) for r in session.execute(text(
            "SELECT m.id, m.external_id, sum(p.amount) AS held FROM postings p "
            "JOIN members m ON m.tenant_id = p.tenant_id AND m.id = p.member_id "
            "JOIN tenants t ON t.id = p.tenant_id WHERE t.slug = :s "
            "AND p.account = 'available' GROUP BY m.id, m.external_id "
            "ORDER BY held DESC, m.id LIMIT :n"), {"s": slug, "n": count})]


def _ask(slug: str, member: tuple, body: dict, moment: dt.datetime = ASKED_AT):
    with session_scope() as session:
        tenant = tenant_by_slug(session, slug)
        policy = policy_of(tenant)
        try:
            exchange, _ = request_exchange(session, tenant.id, policy, member[0], body,
                                           secrets.token_hex(8), moment)
        except ExchangeError as exc:
            session.rollback()
            click.echo(f"   {member[1]} {body['exit']:<7} {body.get('value', body.get('points')):>6}"
                       f"  refused: {exc.code} ({exc.message})")
            return None
        per = policy.points.points_per_unit
        campaign = f", campaign {exchange.campaign}" if exchange.campaign else ""
        click.echo(f"   {member[1]} {exchange.exit:<7} value {exchange.value:>6} for "
                   f"{exchange.total_points:>6} points (fee {exchange.fee_points}{campaign}); "
                   f"credited {exchange.credit_on:%a %d %b}; debited {exchange.debit} yen "
                   f"at {per} point(s) per yen")
        return exchange.id


def _states(slug: str) -> str:
    with session_scope() as session:
        rows = session.execute(text(
            "SELECT e.exit, e.status, count(*) FROM exchanges e JOIN tenants t "
            "ON t.id = e.tenant_id WHERE t.slug = :s GROUP BY e.exit, e.status "
            "ORDER BY e.exit, e.status"), {"s": slug}).all()
    return ", ".join(f"{exit_} {status} {n}" for exit_, status, n in rows)


def _fulfil(slug: str, partners: Partners, day: dt.date) -> None:
    with session_scope() as session:
        tenant_id = tenant_by_slug(session, slug).id
    fulfil_exchanges(get_engine(), tenant_id, partners, day)
    click.echo(f"   fulfilment on {day:%a %d %b}: {_states(slug)}")


def _jp_points(client, keys: dict[str, str], partners: Partners, outbox: str) -> None:
    slug = "jp-points"
    click.echo(f"\n== Exchanges at {slug}, asked on {ASKED_AT:%A %Y-%m-%d %H:%M} JST")
    members = _richest(slug, 8)
    if len(members) < 8 or members[0][2] < 1000:
        click.echo("   (too few members with points for the exchange demo)")
        return
    bank, *campaign_takers, late, paypay, pex, canceller = members
    _ask(slug, bank, {"exit": "bank", "value": 1000, "destination": BANK})
    for member in campaign_takers:  # the campaign's budget: 3 exchanges
        _ask(slug, member, {"exit": "amazon", "value": 500})
    _ask(slug, late, {"exit": "amazon", "value": 500})
    _ask(slug, late, {"exit": "amazon", "value": 500, "use_campaign": False})
    _ask(slug, paypay, {"exit": "paypay", "value": 300, "destination": {"account": "pp-hp1"}})
    _ask(slug, paypay, {"exit": "paypay", "value": 200,
                        "destination": {"account": "pp-0000"}})  # a closed account
    _ask(slug, pex, {"exit": "pex", "points": 500, "destination": {"account": "pex-77"}})
    _ask(slug, pex, {"exit": "amazon", "value": 100})
    _ask(slug, pex, {"exit": "pex", "value": 5005, "destination": {"account": "pex-77"}})
    _ask(slug, pex, {"exit": "bank", "value": 1000, "destination": BANK})
    cancelled = _ask(slug, canceller, {"exit": "amazon", "value": 300, "use_campaign": False})
    with session_scope() as session:
        tenant = tenant_by_slug(session, slug)
        cancel_exchange(session, tenant.id, policy_of(tenant), canceller[0], cancelled)
    click.echo(f"   {canceller[1]} cancelled exchange {cancelled} before processing: "
               "its points are back")
    _fulfil(slug, partners, ASKED_AT.date())
    for folder, partner, key in partner_sandbox.unanswered(outbox):
        answer = partner_sandbox.respond(folder, partner, key)
        click.echo(f"   {partner} answered with {answer.name}")
    for day in (20, 24, 25):
        _fulfil(slug, partners, dt.date(2026, 11, day))
    for path in sorted(Path(outbox).rglob("zengin-*.txt")):
        lines = path.read_bytes().split(b"\r\n")[:-1]
        click.echo(f"   Zengin file {path.name}: {len(lines)} records of "
                   f"{sorted({len(line) for line in lines})} bytes, transfer date "
                   f"{lines[0][54:58].decode()} (Mon 23 Nov is Labor Thanksgiving Day)")
    _bank_return(slug, partners, outbox)
    _show_gift_code(client, keys, slug)
    _expiry(client, keys, slug)


def _bank_return(slug: str, partners: Partners, outbox: str) -> None:
    """Two days after the transfer date the bank sends the transfer back (the name differs):
    the delivered exchange fails and a compensating entry returns the points."""
    path = next(iter(sorted(Path(outbox).rglob("zengin-*.txt"))), None)
    if path is None:
        return
    reference = int(zengin.parse_file(path.read_bytes())[1]["customer_code1"])
    with session_scope() as session:
        member, points = session.execute(text(
            "SELECT m.external_id, e.points + e.fee_points FROM exchanges e JOIN members m "
            "ON m.tenant_id = e.tenant_id AND m.id = e.member_id JOIN tenants t "
            "ON t.id = e.tenant_id WHERE t.slug = :s AND e.id = :e"),
            {"s": slug, "e": reference}).one()
    notice = partner_sandbox.return_transfers(path, {reference: "2"}, dt.date(2026, 11, 27))
    click.echo(f"   the bank returns {member}'s transfer on Fri 27 Nov, the name differs "
               f"({notice.name}); {points} points go back by a compensating entry")
    _fulfil(slug, partners, dt.date(2026, 11, 27))


def _show_gift_code(client, keys: dict[str, str], slug: str) -> None:
    with session_scope() as session:
        row = session.execute(text(
            "SELECT e.number, m.external_id FROM exchanges e JOIN members m ON m.tenant_id = "
            "e.tenant_id AND m.id = e.member_id JOIN tenants t ON t.id = e.tenant_id "
            "WHERE t.slug = :s AND e.kind = 'gift_code' "
            f"AND e.status = '{ExchangeStatus.DELIVERED}' "
            "ORDER BY e.id LIMIT 1"), {"s": slug}).first()
    if row is None:
        return
    auth = {"Authorization": f"Bearer {keys['operator']}"}
    own = client.get(f"/v1/members/{row[1]}/exchanges/{row[0]}", headers=auth).get_json()
    listed = client.get(f"/v1/members/{row[1]}/exchanges", headers=auth).get_json()
    shown = [e["gift_code"] for e in listed["exchanges"] if e["gift_code"]]
    click.echo(f"   {row[1]}'s own look-up of exchange {row[0]}: gift code {own['gift_code']} "
               f"(stored encrypted; the member's list shows {len(shown)} codes)")
    balance = client.get(f"/v1/members/{row[1]}/balance", headers=auth).get_json()["points"]
    click.echo(f"   {row[1]}'s balance in points: {balance}")


def _expiry(client, keys: dict[str, str], slug: str) -> None:
    with session_scope() as session:
        tenant = tenant_by_slug(session, slug)
        policy = policy_of(tenant)
        today = dt.datetime.now(JST).date()
        reminded = forecast(session, tenant.id, policy, today + dt.timedelta(days=160), 30)
    click.echo(f"\n   expiry ({policy.points.expiry.rule}, {policy.points.expiry.days} days): "
               f"{len(reminded)} members would be reminded 160 days from now (GET "
               "/v1/expiring?within=30 lists them on the day)")
    later = today + dt.timedelta(days=policy.points.expiry.days + 1)
    expired = expire_all(get_engine(), slug, later)
    again = expire_all(get_engine(), slug, later)
    with session_scope() as session:
        breakage = session.execute(text(
            "SELECT coalesce(sum(p.amount), 0) FROM postings p JOIN tenants t ON "
            "t.id = p.tenant_id WHERE t.slug = :s AND p.account = 'breakage'"),
            {"s": slug}).scalar_one()
    click.echo(f"   the daily job as of {later}: {expired[slug]} members' points expired "
               f"({int(breakage)} points to breakage); run again that day: "
               f"{again[slug]} more")


def _ten_points(client, root: Path, partners: Partners) -> None:
    policy = load_policy(root / "points" / "jp-tenpoints.json")
    with session_scope() as session:
        tenant, _ = apply_policy(session, policy)
        from settlement.access.service import create_key
        key = create_key(session, tenant.id, "admin", "demo admin")
    auth = {"Authorization": f"Bearer {key}"}
    client.put("/v1/retailers/rakuten-ichiba", json={"name": "Rakuten Ichiba"}, headers=auth)
    client.post("/v1/share-rules", json={"retailer": "rakuten-ichiba",
                                         "kind": "percent_of_commission", "rate": "100"},
                headers=auth)
    client.put("/v1/members/GD000001", json={"name": "Ito Sora"}, headers=auth)
    report = ("transaction_id,order_id,member,retailer,category,event_date,sale_amount,"
              "commission_amount,currency,status\n"
              "GD-1,O-1,GD000001,rakuten-ichiba,,2026-11-02,20000,800,JPY,confirmed\n")
    client.post("/v1/reports?format=generic&as_of=2026-11-10T09:00:00Z", data=report,
                content_type="text/csv", headers=auth)
    click.echo(f"\n== {policy.name}: 800 yen of cash back are 8,000 points")
    member = _richest(policy.slug, 1)[0]
    _ask(policy.slug, member, {"exit": "amazon", "value": 700})
    _ask(policy.slug, member, {"exit": "amazon", "value": 500})
    _fulfil(policy.slug, partners, ASKED_AT.date())
    balance = client.get("/v1/members/GD000001/balance", headers=auth).get_json()
    click.echo(f"   GD000001: {balance['available']} yen available = "
               f"{balance['points']['available']} points; exchanged "
               f"{balance['points']['exchanged']} points")


def exchanges_demo(client, settings, keys: dict[str, dict[str, str]], root: Path) -> None:
    if "jp-points" not in keys:
        return
    with serve(partner_id=settings.amazon_partner_id) as amazon:
        partners = Partners(
            amazon=IncentivesClient.from_settings(settings.model_copy(
                update={"amazon_base_url": amazon.base_url})),
            outbox=settings.outbox_dir, code_key=code_key(settings),
            amazon_partner_id=settings.amazon_partner_id)
        _jp_points(client, keys["jp-points"], partners, settings.outbox_dir)
        _ten_points(client, root, partners)
        click.echo(f"   Amazon sandbox: {len(amazon.sandbox.cards)} gift cards made, "
                   f"{amazon.sandbox.creates} CreateGiftCard answers")
