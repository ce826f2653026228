"""Settlement runs on both databases: the plan (who is paid, how much, by which method, who
is skipped and why), four-eyes approval bound to the plan's hash, and execution through the
file adapters: reserved, then paid or returned to the balance, each cent once."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.errors import http_status
from settlement.catalog.service import MemberBatch, check_member, upsert_members
from settlement.config import Settings
from settlement.payouts.registry import adapter_for
from sandboxes.partners import respond
from settlement.runs import plan as runs
from settlement.runs.execute import execute_run, run_batch, start_execution
from tests.conftest import generic_csv
from tests.domain.helpers import add_retailer, add_rule, balances, ingest, ledger_problems

PAYOUT = dt.date(2026, 11, 15)
BEFORE = dt.datetime(2026, 11, 10, 18, tzinfo=dt.timezone.utc)
AFTER_CUTOFF = dt.datetime(2026, 11, 20, 18, tzinfo=dt.timezone.utc)
ADDRESS = {"name": "A Member", "address_line1": "1 Main St", "city": "Savannah",
           "region": "GA", "postal_code": "31401", "country": "US"}

MEMBERS = {
    "check1": {"payout_method": "check"},
    "paypal-noemail": {"payout_method": "paypal"},
    "amex1": {"payout_method": "amex_mr", "amex_account": "MR123456", "amex_card": "gold"},
    "amex-corp": {"payout_method": "amex_mr", "amex_account": "MR999", "amex_card": "corporate"},
    "bilt-blue": {"payout_method": "bilt", "bilt_account": "B-777", "bilt_tier": "blue"},
    "bilt-closed": {"payout_method": "bilt", "bilt_account": "B-0000", "bilt_tier": "gold"},
    "small": {"payout_method": "check"},
    "minimum": {"payout_method": "check"},
    "homeless": {"payout_method": "check", "address_line1": None},
    "late": {"payout_method": "check"},
}


@pytest.fixture
def us(make_tenant, engine):
    tenant = make_tenant(payouts={
        "dates": ["02-15", "05-15", "08-15", "11-15"], "minimum": "5.01",
        "methods": {"check": {"enabled": True}, "paypal": {"enabled": True},
                    "amex_mr": {"enabled": True, "points_per_major_unit": 100,
                                "minimum_points": 500,
                                "eligible_cards": ["gold", "platinum", "green"]},
                    "bilt": {"enabled": True, "rates": [
                        {"valid_from": "2026-05-15", "tiers": ["blue"], "points_per_major_unit": 50},
                        {"valid_from": "2026-05-15", "tiers": ["silver", "gold", "platinum"],
                         "points_per_major_unit": 100}]}}})
    add_retailer(engine, tenant, "macys")
    add_rule(engine, tenant, retailer="macys", kind="percent_of_sale", rate="10")
    with Session(engine) as session:
        batch = MemberBatch()
        for n, (external, fields) in enumerate(MEMBERS.items(), start=1):
            record = {"external_id": external, **{k: v for k, v in ADDRESS.items()}, **fields}
            check_member(n, {k: v for k, v in record.items() if v is not None}, batch,
                         dt.date(2026, 11, 24))
        assert not batch.errors
        upsert_members(session, tenant.id, "USD", batch, "test")
        session.commit()
    sales = {"check1": "120.00", "paypal-noemail": "80.00", "amex1": "70.01",
             "amex-corp": "90.00", "bilt-blue": "70.07", "bilt-closed": "60.00",
             "small": "50.00", "minimum": "50.10", "homeless": "99.00"}
    lines = [f"t-{m},o,{m},macys,,2026-10-01,{sale},{sale},USD,confirmed"
             for m, sale in sales.items()]
    ingest(engine, tenant, generic_csv(*lines), as_of=BEFORE)
    ingest(engine, tenant, generic_csv("t-late,o,late,macys,,2026-10-01,200.00,20.00,USD,confirmed"),
           as_of=AFTER_CUTOFF)
    return tenant


def _plan(engine, tenant, by="key:1"):
    with Session(engine) as session:
        run = runs.plan_run(session, tenant.id, PAYOUT, by)
        session.commit()
        return run.id, runs.run_totals(session, tenant.id, run.id)


def _approve(engine, tenant, run_id):
    with Session(engine) as session:
        runs.approve_run(session, tenant.id, run_id, "key:2")
        session.commit()


def _adapters(engine, tmp_path):
    settings = Settings(database_url=str(engine.url), outbox_dir=str(tmp_path))
    return lambda method: adapter_for(method, settings)


def _partners_answer(tmp_path):
    for folder in tmp_path.rglob("*-transfer-*.csv"):
        partner, key = folder.name[:-4].split("-transfer-")
        respond(folder.parent, partner, key)


def test_plan_pays_confirmed_balances_by_method_and_lists_every_skip_with_its_reason(engine, us):
    run_id, totals = _plan(engine, us)
    assert {m: (v["members"], v["amount"], v["points"]) for m, v in totals["by_method"].items()} == {
        "check": (2, 1200 + 501, 0),
        "amex_mr": (1, 700, 700),  # 7.00 at 100 points per dollar
        # blue: 50 per dollar after 2026-05-15: 7.01 buys 350 points worth 7.00
        "bilt": (2, 700 + 600, 350 + 600),
    }
    assert {r: (v["members"], v["amount"]) for r, v in totals["skipped"].items()} == {
        "missing_destination": (1, 800), "ineligible_destination": (1, 900),
        "below_minimum": (1, 500), "no_mailing_address": (1, 990)}


def test_a_confirmation_after_the_cutoff_is_not_paid(engine, us):
    run_id, _ = _plan(engine, us)
    with Session(engine) as session:
        planned = session.execute(text(
            "SELECT count(*) FROM run_items i JOIN members m ON m.tenant_id = i.tenant_id "
            "AND m.id = i.member_id WHERE i.run_id = :r AND m.external_id = 'late'"),
            {"r": run_id}).scalar_one()
    assert planned == 0


def test_a_date_that_is_not_a_payout_date_and_a_second_run_are_refused(engine, us):
    with Session(engine) as session, pytest.raises(runs.RunError) as info:
        runs.plan_run(session, us.id, dt.date(2026, 11, 16), "key:1")
    assert info.value.code == "not_a_payout_date"
    _plan(engine, us)
    with Session(engine) as session, pytest.raises(runs.RunError) as info:
        runs.plan_run(session, us.id, PAYOUT, "key:1")
    assert info.value.code == "run_exists"


@pytest.mark.parametrize("first_status", ["planned", "approved", "executing"])
def test_no_run_is_planned_while_another_has_not_reserved_its_money(engine, us, first_status,
                                                                     tmp_path):
    """Two runs planned from the same balances would pay the same money twice: while one
    is planned, approved, or executing with a batch not yet submitted (each batch reserves
    its items when it is submitted), planning any other date is refused; once every batch
    is reserved, or the plan is cancelled, the next date can be planned."""
    run_id, _ = _plan(engine, us)
    if first_status != "planned":
        _approve(engine, us, run_id)
    if first_status == "executing":
        with Session(engine) as session:
            start_execution(session, us.id, run_id)
            session.commit()
    with Session(engine) as session, pytest.raises(runs.RunError) as info:
        runs.plan_run(session, us.id, dt.date(2027, 2, 15), "key:1")
    assert (http_status(info.value.code), info.value.code) == (409, "run_in_flight")
    if first_status == "planned":
        with Session(engine) as session:
            runs.cancel_run(session, us.id, run_id, "key:1")
            session.commit()
    else:  # submitted, so reserved; the points partners have not answered yet
        execute_run(engine, us.id, run_id, _adapters(engine, tmp_path), str(tmp_path),
                    max_polls=0)
        with Session(engine) as session:
            assert runs.get_run(session, us.id, run_id).status == "executing"
    with Session(engine) as session:
        assert runs.plan_run(session, us.id, dt.date(2027, 2, 15), "key:1").id != run_id


def test_the_planner_cannot_approve_and_approval_binds_to_the_plan_hash(engine, us):
    run_id, _ = _plan(engine, us, by="key:1")
    with Session(engine) as session:
        with pytest.raises(runs.RunError) as info:
            runs.approve_run(session, us.id, run_id, "key:1")
        assert info.value.code == "same_principal"
        with pytest.raises(runs.RunError) as info:
            runs.approve_run(session, us.id, run_id, "key:2", expected_hash="0" * 64)
        assert info.value.code == "plan_hash_mismatch"
        run = runs.approve_run(session, us.id, run_id, "key:2")
        assert run.status == "approved"


def test_a_cancelled_plan_frees_the_date_for_a_new_plan(engine, us):
    run_id, _ = _plan(engine, us)
    with Session(engine) as session:
        runs.cancel_run(session, us.id, run_id, "key:1")
        session.commit()
    assert _plan(engine, us)[0] != run_id


def test_execution_pays_each_member_once_and_returns_rejected_points_to_the_balance(
        engine, us, tmp_path):
    run_id, _ = _plan(engine, us)
    _approve(engine, us, run_id)
    adapters = _adapters(engine, tmp_path)
    batches = execute_run(engine, us.id, run_id, adapters, str(tmp_path), max_polls=0)
    # Checks are issued at once; points wait for the partners' response files.
    assert balances(engine, us, "check1") == {"pending": 0, "available": 0, "reserved": 0,
                                              "paid": 1200}
    assert balances(engine, us, "bilt-closed")["reserved"] == 600
    _partners_answer(tmp_path)
    again = execute_run(engine, us.id, run_id, adapters, str(tmp_path), max_polls=0)
    assert set(again) <= set(batches)
    for batch_id in batches:  # a replayed job changes nothing
        run_batch(engine, us.id, batch_id, adapters, str(tmp_path), max_polls=0)
    assert balances(engine, us, "bilt-closed") == {"pending": 0, "available": 600,
                                                   "reserved": 0, "paid": 0}
    assert balances(engine, us, "amex1") == {"pending": 0, "available": 0, "reserved": 0,
                                             "paid": 700}
    assert balances(engine, us, "bilt-blue") == {"pending": 0, "available": 1, "reserved": 0,
                                                 "paid": 700}
    with Session(engine) as session:
        run = runs.get_run(session, us.id, run_id)
        assert run.status == "completed_with_failures"
        paid_entries = session.execute(text(
            "SELECT count(*) FROM postings WHERE tenant_id = :t AND account = 'paid'"),
            {"t": us.id}).scalar_one()
    assert paid_entries == 4  # check1, minimum, amex1, bilt-blue: once each
    assert ledger_problems(engine, us) == []


def test_a_run_whose_last_batches_completed_concurrently_completes_on_the_next_execute(
        engine, us, tmp_path):
    """Two workers completing the last two batches at once could each count the other's
    as open and leave the run `executing` for good; the next execute completes it."""
    run_id, _ = _plan(engine, us)
    _approve(engine, us, run_id)
    adapters = _adapters(engine, tmp_path)
    execute_run(engine, us.id, run_id, adapters, str(tmp_path), max_polls=0)
    _partners_answer(tmp_path)
    execute_run(engine, us.id, run_id, adapters, str(tmp_path), max_polls=0)
    with Session(engine) as session:  # the state the race left behind
        session.execute(text("UPDATE settlement_runs SET status = 'executing', "
                             "completed_at = NULL WHERE tenant_id = :t AND id = :r"),
                        {"t": us.id, "r": run_id})
        session.commit()
    assert execute_run(engine, us.id, run_id, adapters, str(tmp_path), max_polls=0) == []
    with Session(engine) as session:
        assert runs.get_run(session, us.id, run_id).status == "completed_with_failures"


def test_run_totals_read_from_batches_agree_with_the_items_at_every_step(engine, us, tmp_path):
    """GET /v1/settlement-runs/{id} reads totals and progress from the batches' counts (in
    time that does not grow with the run): after planning, each execution step and the
    partners' answers, they are what counting the items gives."""
    from settlement.runs.plan import _totals_from_items

    def both(run_id):
        with Session(engine) as session:
            totals = runs.run_totals(session, us.id, run_id)
            by_method, progress = _totals_from_items(session, {"t": us.id, "r": run_id})
        assert totals["by_method"] == by_method
        assert totals["progress"]["by_status"] == progress
        return totals["progress"]["by_status"]

    run_id, _ = _plan(engine, us)
    assert set(both(run_id)) == {"planned"}
    _approve(engine, us, run_id)
    adapters = _adapters(engine, tmp_path)
    execute_run(engine, us.id, run_id, adapters, str(tmp_path), max_polls=0)
    assert both(run_id).get("submitted")  # the points transfers wait for their partners
    _partners_answer(tmp_path)
    execute_run(engine, us.id, run_id, adapters, str(tmp_path), max_polls=0)
    assert set(both(run_id)) == {"succeeded", "failed"}

