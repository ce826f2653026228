"""Referral bonuses in settlement runs, on both databases: an earned bonus lands in the
member's available balance and the run pays it like any confirmed earning (through the
member's method: a points bonus becomes points again for an Amex member), a pending one
waits; the run report lists each bonus as a `referral_bonus` row and every item still adds
up; once paid, the referral shows `paid`."""
from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.config import Settings
from settlement.payouts.registry import adapter_for
from sandboxes.partners import respond
from settlement.referrals import views
from settlement.runs import plan as runs
from settlement.runs.execute import execute_run
from settlement.runs.report import report_csv_rows, report_json
from settlement.models import Tenant
from settlement.tenants.service import policy_of
from tests.domain.helpers import balances, ledger_problems
from tests.referrals.helpers import STANDARD, make_tenant, put_members, report, row

PAYOUT = dt.date(2026, 11, 15)
POINTS = {**STANDARD, "referrer_bonus": {"points": 5000, "points_method": "amex_mr"}}


def test_the_run_pays_earned_bonuses_and_its_report_lists_them(engine, tmp_path):
    tenant = make_tenant(engine, referrals=(POINTS,))
    put_members(engine, tenant,
                {"external_id": "R1", "payout_method": "amex_mr", "amex_account": "MR1",
                 "amex_card": "gold", "joined_at": "2026-01-05"},
                {"external_id": "R2", "joined_at": "2026-01-06", "address_line1": "5 Oak"},
                {"external_id": "F1", "referred_by": "R1", "address_line1": "9 Elm St"},
                {"external_id": "F2", "referred_by": "R2", "address_line1": "8 Elm St"})
    report(engine, tenant, row("t1", "F1", sale="120.00", status="confirmed"),
           row("t2", "F2", sale="80.00"))
    # R1 earned 5,000 MR points, posted as their $50.00 cash value; F2's purchase (and both
    # bonuses: R2's 5,000 points too) is still pending.
    assert balances(engine, tenant, "R1")["available"] == 5000
    assert balances(engine, tenant, "R2") == {"pending": 5000, "available": 0, "reserved": 0,
                                              "paid": 0}
    with Session(engine) as session:
        run = runs.plan_run(session, tenant.id, PAYOUT, "key:1")
        session.commit()
        run_id = run.id
        items = {i.member_id: (i.method, i.amount, i.points)
                 for i in runs.items_page(session, tenant.id, run_id, status=None,
                                          method=None, after=0, limit=100)}
    assert sorted(items.values()) == [("amex_mr", 5000, 5000), ("check", 3200, None)]
    with Session(engine) as session:
        runs.approve_run(session, tenant.id, run_id, "key:2")
        session.commit()
    settings = Settings(database_url=str(engine.url), outbox_dir=str(tmp_path))
    adapters = lambda method: adapter_for(method, settings)  # noqa: E731
    execute_run(engine, tenant.id, run_id, adapters, str(tmp_path), max_polls=0)
    for folder in tmp_path.rglob("*-transfer-*.csv"):
        partner, key = folder.name[:-4].split("-transfer-")
        respond(folder.parent, partner, key)
    execute_run(engine, tenant.id, run_id, adapters, str(tmp_path), max_polls=0)
    assert balances(engine, tenant, "R1")["paid"] == 5000
    assert balances(engine, tenant, "F1")["paid"] == 1200 + 2000
    assert ledger_problems(engine, tenant) == []
    with Session(engine) as session:
        run = runs.get_run(session, tenant.id, run_id)
        rows = list(csv.DictReader(io.StringIO("".join(
            report_csv_rows(session, tenant.id, run, 2)), newline="")))
        document = report_json(session, tenant.id, run, 2)
        policy = policy_of(session.get(Tenant, tenant.id))
        f1 = _member_id(session, tenant, "F1")
        shown = views.member_referrals(session, tenant.id, policy, f1)
    kinds = sorted((r["member"], r["row_kind"], r["source"], r["cash_back"]) for r in rows)
    assert kinds == [("F1", "commission", "generic", "12.00"),
                     ("F1", "referral_bonus", "referral:friend", "20.00"),
                     ("R1", "referral_bonus", "referral:referrer", "50.00")]
    for member in ("F1", "R1"):
        mine = [r for r in rows if r["member"] == member]
        assert sum(int(r["cash_back"].replace(".", "")) for r in mine) == int(
            mine[0]["item_amount"].replace(".", ""))
    by_member = {i["member"]: i for i in document["items"]}
    assert by_member["R1"]["referral_bonuses"] == [{
        "side": "referrer", "friend": "F1", "transaction_id": "t1", "points": 5000,
        "points_method": "amex_mr", "confirmed_on": "2026-11-01", "cash_back": "50.00"}]
    assert by_member["R1"]["adjustment"] == "0.00"
    # Paid: the friend's own bonus and the referrer's.
    assert shown[0]["status"] == "paid"
    assert {side: b["status"] for side, b in shown[0]["bonuses"].items()} == {
        "friend": "paid", "referrer": "paid"}


def _member_id(session, tenant, external_id) -> int:
    return session.execute(text("SELECT id FROM members WHERE tenant_id = :t "
                                "AND external_id = :e"), {"t": tenant.id, "e": external_id}
                           ).scalar_one()
