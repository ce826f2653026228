"""Points expiry: inactivity and fixed term, one entry per member and date, into breakage."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.exchanges.expiry import expire_points, forecast
from settlement.exchanges.quote import ExchangeError
from settlement.exchanges.service import request_exchange
from settlement.models import Tenant
from settlement.tenants.service import policy_of
from tests.exchanges.conftest import JST, buckets, earn

FIXED = {"expiry": {"rule": "fixed_term", "months": 6}}


def run_expiry(engine, tenant, today):
    with Session(engine) as session:
        policy = policy_of(session.get(Tenant, tenant.id))
        posted = expire_points(session, tenant.id, policy, today)
        session.commit()
        return posted


def soon(engine, tenant, today, within=30):
    with Session(engine) as session:
        policy = policy_of(session.get(Tenant, tenant.id))
        return forecast(session, tenant.id, policy, today, within)


def test_inactivity_expires_everything_available_after_the_days_into_breakage(
        engine, points_tenant):
    tenant = points_tenant()  # inactivity, 180 days
    mid = earn(engine, tenant, "M1", 1200, on=dt.date(2026, 3, 1))
    assert run_expiry(engine, tenant, dt.date(2026, 8, 27)) == []  # day 179
    warned = soon(engine, tenant, dt.date(2026, 8, 1))
    assert [(w.member_id, w.amount, w.on) for w in warned] == [(mid, 1200,
                                                                dt.date(2026, 8, 28))]
    posted = run_expiry(engine, tenant, dt.date(2026, 8, 28))
    assert [(p.member_id, p.amount) for p in posted] == [(mid, 1200)]
    assert run_expiry(engine, tenant, dt.date(2026, 8, 28)) == []  # once per member and date
    assert {k: buckets(engine, tenant, mid)[k] for k in ("available", "breakage")} == {
        "available": 0, "breakage": 1200}


def test_an_exchange_is_activity_that_restarts_the_inactivity_clock(engine, points_tenant):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 1200, on=dt.date(2026, 3, 1))
    with Session(engine) as session:
        policy = policy_of(session.get(Tenant, tenant.id))
        request_exchange(session, tenant.id, policy, mid, {"exit": "amazon", "value": 300},
                         "k", dt.datetime(2026, 6, 1, 9, tzinfo=JST))
        session.commit()
    assert run_expiry(engine, tenant, dt.date(2026, 8, 28)) == []
    assert [p.amount for p in run_expiry(engine, tenant, dt.date(2026, 11, 28))] == [900]


def test_fixed_term_expires_each_months_earnings_oldest_spent_first(engine, points_tenant):
    tenant = points_tenant(points=FIXED)
    mid = earn(engine, tenant, "M1", 1000, on=dt.date(2026, 1, 10))
    earn(engine, tenant, "M1", 500, on=dt.date(2026, 2, 10))
    with Session(engine) as session:  # 300 spent: they came out of January's 1000
        policy = policy_of(session.get(Tenant, tenant.id))
        request_exchange(session, tenant.id, policy, mid, {"exit": "amazon", "value": 300},
                         "k", dt.datetime(2026, 3, 1, 9, tzinfo=JST))
        session.commit()
    assert run_expiry(engine, tenant, dt.date(2026, 7, 31)) == []
    assert [p.amount for p in run_expiry(engine, tenant, dt.date(2026, 8, 1))] == [700]
    assert [w.amount for w in soon(engine, tenant, dt.date(2026, 8, 5))] == [500]
    assert [p.amount for p in run_expiry(engine, tenant, dt.date(2026, 9, 1))] == [500]
    assert {k: buckets(engine, tenant, mid)[k] for k in ("available", "reserved",
                                                         "breakage")} == {
        "available": 0, "reserved": 300, "breakage": 1200}


def test_the_expiring_route_and_the_balance_name_points_and_date(client, engine,
                                                                  points_tenant):
    tenant = points_tenant()
    today = dt.datetime.now(JST).date()  # the route's own today, in the tenant's zone
    earn(engine, tenant, "OLD", 1000, on=today - dt.timedelta(days=170))
    earn(engine, tenant, "NEW", 1000, on=today - dt.timedelta(days=100))
    answer = client.get("/v1/expiring?within=30", headers=tenant.auth("operator"))
    assert answer.status_code == 200, answer.get_json()
    on = (today + dt.timedelta(days=10)).isoformat()
    assert answer.get_json()["members"] == [
        {"member": "OLD", "points": 1000, "amount": "1000", "expires_on": on}]
    balance = client.get("/v1/members/OLD/balance", headers=tenant.auth("operator")).get_json()
    assert balance["points"]["expiring"] == {"points": 1000, "on": on}
    assert balance["points"]["available"] == 1000
    new = client.get("/v1/members/NEW/balance", headers=tenant.auth("operator")).get_json()
    assert new["points"]["expiring"] is None
    assert client.get("/v1/expiring?within=-1",
                      headers=tenant.auth("operator")).status_code == 422


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_an_exchange_racing_the_expiry_job_never_spends_expired_points(engine, points_tenant):
    tenant = points_tenant()
    for number in range(5):
        earn(engine, tenant, f"M{number}", 1000, on=dt.date(2026, 3, 1))
    with Session(engine) as session:
        policy = policy_of(session.get(Tenant, tenant.id))
    start = threading.Barrier(6, timeout=120)
    answers = []

    def exchange(member_id):
        with Session(engine) as session:
            session.connection()
            start.wait()
            try:
                request_exchange(session, tenant.id, policy, member_id,
                                 {"exit": "amazon", "value": 1000}, "k",
                                 dt.datetime(2026, 8, 28, 9, tzinfo=JST))
                session.commit()
                answers.append("granted")
            except ExchangeError as exc:
                session.rollback()
                answers.append(exc.code)

    def expiry():
        start.wait()
        run_expiry(engine, tenant, dt.date(2026, 8, 28))

    members = _member_ids(engine, tenant)
    threads = [threading.Thread(target=exchange, args=(m,)) for m in members]
    threads.append(threading.Thread(target=expiry))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for member in members:
        held = buckets(engine, tenant, member)
        assert held["available"] == 0
        assert sorted((held["reserved"], held.get("breakage", 0))) == [0, 1000]
    assert set(answers) <= {"granted", "insufficient_points"}


def _member_ids(engine, tenant):
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT id FROM members WHERE tenant_id = :t ORDER BY id"),
                                 {"t": tenant.id}).scalars())
