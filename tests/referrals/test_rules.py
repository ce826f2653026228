"""Referral rules of DOMAIN.md, on both databases: a claim that would close a cycle is
refused and the earlier referral stands; a held referral approved after a run is earned
until the next run pays it (the paid run's report does not change); bonuses earned on a
purchase reversed later are clawed back, netted by the next run that pays the member; a
pending bonus is in the pending balance."""
from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.ledger.check import check_ledger
from settlement.models import Tenant
from settlement.referrals import service, views
from settlement.tenants.service import policy_of
from tests.referrals.helpers import (bonuses, make_tenant, money, put_members, referrals,
                                     report, row)
from tests.runs.test_report_frozen import number_of, pay
from tests.runs.test_report_frozen import report as run_report

NOV, FEB = dt.date(2026, 11, 15), dt.date(2027, 2, 15)
NOV20 = dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc)


def shown(engine, tenant, friend: str) -> dict:
    """The friend's referral as the API shows it to the friend: status and bonus statuses."""
    with Session(engine) as session:
        policy = policy_of(session.get(Tenant, tenant.id))
        member_id = session.execute(text(
            "SELECT id FROM members WHERE tenant_id = :t AND external_id = :e"),
            {"t": tenant.id, "e": friend}).scalar_one()
        view = [v for v in views.member_referrals(session, tenant.id, policy, member_id)
                if v["friend"] == friend][0]
    return {"status": view["status"],
            **{side: b["status"] for side, b in view["bonuses"].items()}}


def ledger_ok(engine, tenant) -> bool:
    with Session(engine) as session:
        return check_ledger(session, tenant.id).ok


def test_a_claim_closing_a_cycle_is_refused_and_the_earlier_referral_stands(engine):
    tenant = make_tenant(engine)
    put_members(engine, tenant, {"external_id": "Y1", "joined_at": "2026-01-05"},
                {"external_id": "Y2", "referred_by": "Y1", "address_line1": "9 Elm St"})
    assert referrals(engine, tenant) == {"Y2": ("open", None, None)}
    # Y1 now claims to have been referred by Y2 (whom Y1 referred): only that claim goes.
    put_members(engine, tenant, {"external_id": "Y1", "joined_at": "2026-01-05",
                                 "referred_by": "Y2"})
    assert referrals(engine, tenant) == {"Y2": ("open", None, None),
                                         "Y1": ("refused", "referral_cycle", None)}
    # The earlier referral qualifies as before, and a sweep changes nothing.
    report(engine, tenant, row("t1", "Y2", status="confirmed"), row("t2", "Y1",
                                                                    status="confirmed"))
    with Session(engine) as session:
        service.sweep(session, tenant.id, dt.date(2026, 11, 24))
        session.commit()
    assert referrals(engine, tenant) == {"Y2": ("earned", None, "t1"),
                                         "Y1": ("refused", "referral_cycle", None)}
    assert money(engine, tenant, "Y1") == (0, 1000 + 3000)
    assert money(engine, tenant, "Y2") == (0, 1000 + 2000)
    assert ledger_ok(engine, tenant)


def test_a_held_referral_approved_after_a_run_is_earned_until_the_next_run_pays_it(
        engine, tmp_path):
    tenant = make_tenant(engine)
    same = {"address_line1": "9 Elm St"}
    put_members(engine, tenant, {"external_id": "R1", "joined_at": "2026-01-05", **same},
                {"external_id": "F1", "referred_by": "R1", **same})
    report(engine, tenant, row("t1", "F1", status="confirmed"))
    assert referrals(engine, tenant)["F1"] == ("held", "shared_mailing_address", "t1")
    run1 = pay(engine, tenant, NOV, tmp_path)  # pays F1's own 10.00 cash back
    before = run_report(engine, tenant, run1)
    with Session(engine) as session:
        referral_id = service.referral_of(session, tenant.id, _id(session, tenant, "F1"))
        service.review(session, tenant.id, referral_id, "approve", "key:9",
                       today=dt.date(2026, 11, 20))
        session.commit()
    assert shown(engine, tenant, "F1") == {"status": "earned", "friend": "earned",
                                           "referrer": "earned"}
    assert [(b[1], b[5]) for b in bonuses(engine, tenant)] == [("friend", "earned"),
                                                                ("referrer", "earned")]
    assert run_report(engine, tenant, run1) == before
    run2 = pay(engine, tenant, FEB, tmp_path)
    body, _ = run_report(engine, tenant, run2)
    rows = sorted((r["member"], r["row_kind"], r["source"], r["confirmed_on"], r["cash_back"])
                  for r in csv.DictReader(io.StringIO(body, newline="")))
    assert rows == [("F1", "referral_bonus", "referral:friend", "2026-11-20", "20.00"),
                    ("R1", "referral_bonus", "referral:referrer", "2026-11-20", "30.00")]
    assert shown(engine, tenant, "F1") == {"status": "paid", "friend": "paid",
                                           "referrer": "paid"}
    assert run_report(engine, tenant, run1) == before
    assert ledger_ok(engine, tenant)


def test_bonuses_are_clawed_back_when_the_purchase_is_reversed_after_they_were_earned(
        engine, tmp_path):
    tenant = make_tenant(engine)
    put_members(engine, tenant, {"external_id": "R1", "joined_at": "2026-01-05"},
                {"external_id": "F1", "referred_by": "R1", "address_line1": "9 Elm St"})
    report(engine, tenant, row("t1", "F1", status="confirmed"))
    run1 = pay(engine, tenant, NOV, tmp_path)
    assert shown(engine, tenant, "F1")["status"] == "paid"
    report(engine, tenant, row("t1", "F1", status="reversed"), as_of=NOV20)
    assert referrals(engine, tenant)["F1"] == ("refused", "purchase_reversed", "t1")
    assert {b[1]: (b[5], b[6]) for b in bonuses(engine, tenant)} == {
        "friend": ("clawed_back", "purchase_reversed"),
        "referrer": ("clawed_back", "purchase_reversed")}
    # Paid already: the balances go negative, the paid money is not rewritten.
    assert money(engine, tenant, "R1") == (0, -3000)
    assert money(engine, tenant, "F1") == (0, -1000 - 2000)
    assert ledger_ok(engine, tenant)
    # The next run that pays F1 nets the three claw-backs, each named with run 1.
    report(engine, tenant, row("t9", "F1", sale="500.00", status="confirmed"), as_of=NOV20)
    assert len(bonuses(engine, tenant)) == 2  # one pair per friend, ever
    run2 = pay(engine, tenant, FEB, tmp_path)
    body, document = run_report(engine, tenant, run2)
    run1 = number_of(engine, tenant, run1)  # what the report names it by
    f1 = [(r["row_kind"], r["source"], r["transaction_id"], r["commission_status"],
           r["cash_back"], r["earlier_run_id"])
          for r in csv.DictReader(io.StringIO(body, newline="")) if r["member"] == "F1"]
    assert f1 == [("commission", "generic", "t9", "confirmed", "50.00", ""),
                  ("adjustment", "generic", "t1", "reversed", "-10.00", str(run1)),
                  ("adjustment", "referral:friend", "t1", "clawed_back", "-20.00", str(run1))]
    item = next(i for i in document["items"] if i["member"] == "F1")
    assert (item["amount"], item["adjustment"]) == ("20.00", "0.00")
    assert [(c["of"], c["cash_back"]) for c in item["corrections"]] == [
        ("commission", "-10.00"), ("referral_bonus", "-20.00")]
    assert ledger_ok(engine, tenant)


def test_a_pending_bonus_is_in_the_pending_balance(engine):
    tenant = make_tenant(engine)
    put_members(engine, tenant, {"external_id": "R1", "joined_at": "2026-01-05"},
                {"external_id": "F1", "referred_by": "R1", "address_line1": "9 Elm St"})
    report(engine, tenant, row("t1", "F1"))
    assert money(engine, tenant, "R1") == (3000, 0)
    assert money(engine, tenant, "F1") == (1000 + 2000, 0)
    assert shown(engine, tenant, "F1") == {"status": "pending", "friend": "pending",
                                           "referrer": "pending"}
    assert ledger_ok(engine, tenant)


def _id(session, tenant, external_id: str) -> int:
    return session.execute(text("SELECT id FROM members WHERE tenant_id = :t "
                                "AND external_id = :e"),
                           {"t": tenant.id, "e": external_id}).scalar_one()
