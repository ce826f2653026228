"""Run reports are frozen at payment, on both databases: a paid run's report (CSV and JSON,
agreeing row for row and summing to what was paid) never changes after the fact; a
reversal of a commission a run paid shows up in the report of the run that nets it, as an
adjustment naming that commission and the earlier run."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy.orm import Session

from settlement.catalog.service import MemberBatch, check_member, upsert_members
from settlement.config import Settings
from settlement.payouts.registry import adapter_for
from settlement.runs import plan as runs
from settlement.runs.execute import execute_run
from settlement.runs.report import report_csv_rows, report_json
from tests.conftest import generic_csv
from tests.domain.helpers import add_retailer, add_rule, balances, ingest, ledger_problems

MAY, AUG, NOV = dt.date(2026, 5, 15), dt.date(2026, 8, 15), dt.date(2026, 11, 15)
ADDRESS = {"name": "A Member", "address_line1": "1 Main St", "city": "Savannah",
           "region": "GA", "postal_code": "31401", "country": "US"}


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day + "T18:00:00+00:00")


@pytest.fixture
def us(make_tenant, engine):
    tenant = make_tenant(payouts={"dates": ["02-15", "05-15", "08-15", "11-15"],
                                  "minimum": "5.01",
                                  "methods": {"check": {"enabled": True}}})
    add_retailer(engine, tenant, "macys")
    add_rule(engine, tenant, retailer="macys", kind="percent_of_sale", rate="10")
    with Session(engine) as session:
        batch = MemberBatch()
        for n, external in enumerate(("M1", "M2"), start=1):
            check_member(n, {"external_id": external, "payout_method": "check", **ADDRESS},
                         batch, dt.date(2026, 11, 1))
        assert not batch.errors
        upsert_members(session, tenant.id, "USD", batch, "test")
        session.commit()
    return tenant


def sale(txn: str, member: str, amount: str, status: str = "confirmed") -> str:
    return f"{txn},o-{txn},{member},macys,,2026-03-01,{amount},{amount},USD,{status}"


def pay(engine, tenant, payout_date: dt.date, tmp_path) -> int:
    with Session(engine) as session:
        run_id = runs.plan_run(session, tenant.id, payout_date, "key:1").id
        session.commit()
    with Session(engine) as session:
        runs.approve_run(session, tenant.id, run_id, "key:2")
        session.commit()
    settings = Settings(database_url=str(engine.url), outbox_dir=str(tmp_path))
    execute_run(engine, tenant.id, run_id, lambda m: adapter_for(m, settings), str(tmp_path),
                max_polls=0)
    return run_id


def number_of(engine, tenant, run_id: int) -> int:
    """The tenant's number of the run: what reports name an earlier run by."""
    with Session(engine) as session:
        return runs.get_run(session, tenant.id, run_id).number


def report(engine, tenant, run_id) -> tuple[str, dict]:
    with Session(engine) as session:
        run = runs.get_run(session, tenant.id, run_id)
        return ("".join(report_csv_rows(session, tenant.id, run, 2)),
                report_json(session, tenant.id, run, 2))


def cents(text: str) -> int:
    return int(text.replace(".", ""))


def rows_by_member(body: str) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for row in csv.DictReader(io.StringIO(body, newline="")):
        if row["row_kind"] != "skipped":
            rows.setdefault(row["member"], []).append(row)
    return rows


def assert_adds_up_and_agrees(body: str, document: dict) -> int:
    """Each item is the sum of its rows, in CSV and JSON alike, row for row; returns the
    report's total cash back."""
    by_member = rows_by_member(body)
    total = 0
    for item in document["items"]:
        rows = by_member[item["member"]]
        assert sum(cents(r["cash_back"]) for r in rows) == cents(item["amount"])
        from_json = ([("commission", c["transaction_id"], c["cash_back"])
                      for c in item["commissions"]]
                     + [("referral_bonus", b["transaction_id"], b["cash_back"])
                        for b in item["referral_bonuses"]]
                     + [("adjustment", c["transaction_id"], c["cash_back"])
                        for c in item["corrections"]])
        if cents(item["adjustment"]) or not from_json:
            from_json.append(("adjustment", "", item["adjustment"]))
        assert [(r["row_kind"], r["transaction_id"], r["cash_back"]) for r in rows] == from_json
        total += cents(item["amount"])
    assert set(by_member) == {i["member"] for i in document["items"]}
    return total


def test_a_paid_runs_report_stays_as_paid_and_the_next_run_nets_the_reversal(
        engine, us, tmp_path):
    ingest(engine, us, generic_csv(sale("T-M1", "M1", "100.00"), sale("T-M2", "M2", "200.00")),
           as_of=at("2026-08-10"))
    run1 = pay(engine, us, AUG, tmp_path)
    before = report(engine, us, run1)
    assert assert_adds_up_and_agrees(*before) == 1000 + 2000
    # After payment the network reverses T-M1; M1 earns 25.00 more before November.
    ingest(engine, us, generic_csv(sale("T-M1", "M1", "100.00", "reversed")),
           as_of=at("2026-08-20"))
    ingest(engine, us, generic_csv(sale("T-M1b", "M1", "250.00"), sale("T-M2b", "M2", "60.00")),
           as_of=at("2026-10-20"))
    assert report(engine, us, run1) == before  # the same bytes, the same document

    run2 = pay(engine, us, NOV, tmp_path)
    body, document = report(engine, us, run2)
    assert assert_adds_up_and_agrees(body, document) == 1500 + 600
    m1 = rows_by_member(body)["M1"]
    assert [(r["row_kind"], r["transaction_id"], r["commission_status"], r["cash_back"],
             r["earlier_run_id"]) for r in m1] == [
        ("commission", "T-M1b", "confirmed", "25.00", ""),
        ("adjustment", "T-M1", "reversed", "-10.00", str(number_of(engine, us, run1)))]
    item = next(i for i in document["items"] if i["member"] == "M1")
    assert item["corrections"] == [{
        "of": "commission", "earlier_run_id": number_of(engine, us, run1), "source": "generic",
        "transaction_id": "T-M1", "retailer": "macys", "event_date": "2026-03-01",
        "confirmed_on": "2026-08-10", "status": "reversed", "cash_back": "-10.00"}]
    assert balances(engine, us, "M1")["paid"] == 1000 + 1500
    assert report(engine, us, run1) == before
    assert ledger_problems(engine, us) == []


def test_a_reversal_carries_to_the_run_that_finally_pays_a_member_skipped_meanwhile(
        engine, us, tmp_path):
    ingest(engine, us, generic_csv(sale("T-M1", "M1", "100.00"), sale("T-M2", "M2", "80.00")),
           as_of=at("2026-05-10"))
    run1 = pay(engine, us, MAY, tmp_path)
    ingest(engine, us, generic_csv(sale("T-M1", "M1", "100.00", "reversed")),
           as_of=at("2026-05-20"))
    ingest(engine, us, generic_csv(sale("T-M2b", "M2", "70.00")), as_of=at("2026-07-10"))
    run2 = pay(engine, us, AUG, tmp_path)  # M1 is -10.00: skipped, nothing netted yet
    body, document = report(engine, us, run2)
    assert [(s["member"], s["reason"], s["amount"]) for s in document["skipped"]] == [
        ("M1", "negative_balance", "-10.00")]
    assert "M1" not in rows_by_member(body)
    ingest(engine, us, generic_csv(sale("T-M1c", "M1", "300.00")), as_of=at("2026-10-10"))
    run3 = pay(engine, us, NOV, tmp_path)
    body, document = report(engine, us, run3)
    assert assert_adds_up_and_agrees(body, document) == 2000
    assert [(r["transaction_id"], r["cash_back"], r["earlier_run_id"])
            for r in rows_by_member(body)["M1"]] == [("T-M1c", "30.00", ""),
                                                      ("T-M1", "-10.00",
                                                       str(number_of(engine, us, run1)))]


def test_a_cancelled_plan_leaves_its_commissions_to_the_next_plan(engine, us):
    ingest(engine, us, generic_csv(sale("T-M1", "M1", "100.00")), as_of=at("2026-11-10"))
    with Session(engine) as session:
        first = runs.plan_run(session, us.id, NOV, "key:1").id
        runs.cancel_run(session, us.id, first, "key:1")
        second = runs.plan_run(session, us.id, NOV, "key:1").id
        session.commit()
    body, document = report(engine, us, second)
    assert [c["transaction_id"] for i in document["items"] for c in i["commissions"]] == [
        "T-M1"]
    assert report(engine, us, first)[1]["items"][0]["commissions"] == []
