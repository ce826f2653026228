"""A payout run and an exchange never spend the same balance on a point site (PostgreSQL,
real concurrent connections): what a plan froze for a member cannot be exchanged until the
run has reserved it, and a plan made while exchanges are in flight counts them."""
from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from settlement.catalog.service import MemberBatch, check_member, upsert_members
from settlement.exchanges.quote import ExchangeError
from settlement.exchanges.service import request_exchange
from settlement.ledger.service import unbalanced_entries
from settlement.models import RunBatch, Tenant
from settlement.runs import plan as runs
from settlement.runs.execute import _reserve
from settlement.tenants.service import policy_of
from tests.exchanges.conftest import NOW, buckets, earn, member_id
from tests.exchanges.test_concurrency import pg_engine  # noqa: F401 (fixture)
from tests.faults.harness import ADDRESS, wait_for

PAYOUT = dt.date(2026, 11, 15)
pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("db_url", ["postgres"],
                                                            indirect=True)]


def paypal_members(engine, tenant, count: int, yen: int) -> list[int]:
    """Members paid by PayPal, each with `yen` available (none earned if 0)."""
    with Session(engine) as session:
        batch = MemberBatch()
        for n in range(1, count + 1):
            check_member(n, {"external_id": f"P{n}", "payout_method": "paypal",
                             "paypal_email": f"p{n}@example.com", **ADDRESS},
                         batch, dt.date(2026, 11, 1))
        assert not batch.errors, batch.errors
        upsert_members(session, tenant.id, "JPY", batch, "guard")
        session.commit()
    if not yen:
        return [member_id(engine, tenant, f"P{n}") for n in range(1, count + 1)]
    return [earn(engine, tenant, f"P{n}", yen) for n in range(1, count + 1)]


def policy(engine, tenant):
    with Session(engine) as session:
        return policy_of(session.get(Tenant, tenant.id))


def exchange(session, tenant, member_id, value, key):
    return request_exchange(session, tenant.id, policy(session.bind, tenant), member_id,
                            {"exit": "amazon", "value": value}, key, NOW)


def planned(engine, tenant) -> dict[int, int]:
    with Session(engine) as session:
        return dict(session.execute(text(
            "SELECT member_id, amount FROM run_items WHERE tenant_id = :t"),
            {"t": tenant.id}).all())


def reserve_every_batch(engine, tenant) -> None:
    """What the run's first submission does: available -> reserved for its items."""
    with Session(engine) as session:
        for batch in session.scalars(select(RunBatch).where(RunBatch.tenant_id == tenant.id)):
            _reserve(session, batch)
            batch.attempts = 1
        session.commit()


def waiting_on_a_lock(engine, application: str) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = :a AND wait_event_type = 'Lock'"),
            {"a": application}).scalar_one())


def test_an_exchange_after_the_plan_froze_the_balance_is_refused_naming_the_payout(
        engine, points_tenant):
    tenant = points_tenant()
    [mid] = paypal_members(engine, tenant, 1, 5000)
    with Session(engine) as session:
        runs.plan_run(session, tenant.id, PAYOUT, "key:planner")
        session.commit()
    assert planned(engine, tenant) == {mid: 5000}
    with Session(engine) as session, pytest.raises(ExchangeError) as refused:
        exchange(session, tenant, mid, 1000, "after-plan")
    assert refused.value.code == "held_for_payout"
    assert "5000 of your 5000 points are being paid out on 2026-11-15" in refused.value.message
    # Once the run has reserved its items, what is left (nothing) is all there is.
    reserve_every_batch(engine, tenant)
    assert buckets(engine, tenant, mid)["available"] == 0
    earn(engine, tenant, "P1", 800)
    with Session(engine) as session:
        exchange(session, tenant, mid, 500, "after-reserve")
        session.commit()
    assert buckets(engine, tenant, mid)["available"] == 300


def test_an_exchange_racing_a_plan_waits_for_it_then_sees_the_frozen_balance(
        pg_engine, points_tenant):  # noqa: F811
    tenant = points_tenant()
    [mid] = paypal_members(pg_engine, tenant, 1, 5000)
    with Session(pg_engine) as planning:
        runs.plan_run(planning, tenant.id, PAYOUT, "key:planner")  # the tenant row held

        def ask():
            with Session(pg_engine) as session:
                session.execute(text("SET application_name = 'guard-exchange'"))
                try:
                    exchange(session, tenant, mid, 1000, "racing")
                    session.commit()
                    return "granted"
                except ExchangeError as exc:
                    return exc.code
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(ask)
            wait_for(lambda: waiting_on_a_lock(pg_engine, "guard-exchange"), 30,
                     "the exchange to wait for the plan")
            planning.commit()
            assert answer.result(timeout=30) == "held_for_payout"
    reserve_every_batch(pg_engine, tenant)
    assert buckets(pg_engine, tenant, mid)["available"] == 0


def test_a_plan_racing_an_exchange_waits_for_it_then_pays_only_what_is_left(
        pg_engine, points_tenant):  # noqa: F811
    tenant = points_tenant()
    [mid] = paypal_members(pg_engine, tenant, 1, 5000)
    with Session(pg_engine) as exchanging:
        exchange(exchanging, tenant, mid, 1000, "first")  # reserved, not committed

        def plan():
            with Session(pg_engine) as session:
                session.execute(text("SET application_name = 'guard-plan'"))
                runs.plan_run(session, tenant.id, PAYOUT, "key:planner")
                session.commit()
        with ThreadPoolExecutor(1) as pool:
            done = pool.submit(plan)
            wait_for(lambda: waiting_on_a_lock(pg_engine, "guard-plan"), 30,
                     "the plan to wait for the exchange")
            exchanging.commit()
            done.result(timeout=60)
    assert planned(pg_engine, tenant) == {mid: 4000}
    reserve_every_batch(pg_engine, tenant)
    assert buckets(pg_engine, tenant, mid)["available"] == 0


def test_exchanges_and_a_plan_all_at_once_never_spend_more_than_a_member_holds(
        pg_engine, points_tenant):  # noqa: F811
    tenant = points_tenant()
    # 9 connections: the server is shared, and a race needs only a few.
    members = paypal_members(pg_engine, tenant, 4, 3000)
    calls = [("exchange", mid, n) for mid in members for n in range(2)] + [("plan", None, 0)]
    barrier = threading.Barrier(len(calls), timeout=120)

    def one(call):
        kind, mid, n = call
        with Session(pg_engine) as session:
            session.connection()
            barrier.wait(timeout=60)
            try:
                if kind == "plan":
                    runs.plan_run(session, tenant.id, PAYOUT, "key:planner")
                else:
                    exchange(session, tenant, mid, 1000, f"all-{mid}-{n}")
                session.commit()
                return "granted"
            except ExchangeError as exc:
                return exc.code
    with ThreadPoolExecutor(len(calls)) as pool:
        answers = list(pool.map(one, calls))
    assert set(answers) <= {"granted", "held_for_payout", "insufficient_points"}
    reserve_every_batch(pg_engine, tenant)
    frozen = planned(pg_engine, tenant)
    for mid in members:
        held = buckets(pg_engine, tenant, mid)
        # earned 3000 = what is left + reserved by exchanges and by the run
        assert held["available"] >= 0, (mid, held)
        assert held["available"] + held["reserved"] == 3000
        assert held["reserved"] >= frozen.get(mid, 0)
    with Session(pg_engine) as session:
        assert unbalanced_entries(session, tenant.id) == []


def test_points_a_planned_run_will_pay_do_not_expire(engine, points_tenant):
    from settlement.exchanges.expiry import expire_points
    tenant = points_tenant()  # inactivity: everything expires 180 days after the last earning
    [mid] = paypal_members(engine, tenant, 1, 0)
    earn(engine, tenant, "P1", 5000, on=dt.date(2026, 1, 10))
    with Session(engine) as session:
        runs.plan_run(session, tenant.id, PAYOUT, "key:planner")
        session.commit()
    with Session(engine) as session:
        assert expire_points(session, tenant.id, policy(engine, tenant), NOW.date()) == []
        session.commit()
    reserve_every_batch(engine, tenant)
    held = buckets(engine, tenant, mid)
    assert (held["available"], held["reserved"], held.get("breakage", 0)) == (0, 5000, 0)
