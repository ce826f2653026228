"""Exchanges under real concurrency on PostgreSQL: many connections at once, one budget.

Each request runs on its own connection and thread, released together by a barrier."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from settlement.db import normalise_url
from settlement.exchanges.quote import ExchangeError
from settlement.exchanges.service import request_exchange
from settlement.ledger.service import unbalanced_entries
from settlement.models import Tenant
from settlement.tenants.service import policy_of
from tests.domain.helpers import add_members
from tests.exchanges.conftest import NOW, buckets, campaign, earn

CONNECTIONS = 40


@pytest.fixture
def pg_engine(pg_url):
    engine = create_engine(normalise_url(pg_url), pool_size=CONNECTIONS, max_overflow=0,
                           pool_timeout=120)
    yield engine
    engine.dispose()


def _race(engine, tenant, calls: list[tuple[int, dict, str]]) -> list[str]:
    """Run every (member, body, key) at once; each answer is 'granted' or the refusal code."""
    barrier = threading.Barrier(min(len(calls), CONNECTIONS), timeout=120)
    policy = _policy(engine, tenant)

    def one(call):
        member_id, body, key = call
        with Session(engine) as session:
            session.connection()  # the connection is taken before the start line
            try:
                barrier.wait(timeout=60)
            except threading.BrokenBarrierError:
                pass
            try:
                request_exchange(session, tenant.id, policy, member_id, body, key, NOW)
                session.commit()
                return "granted"
            except ExchangeError as exc:
                session.rollback()
                return exc.code

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        return list(pool.map(one, calls))


def _policy(engine, tenant):
    with Session(engine) as session:
        return policy_of(session.get(Tenant, tenant.id))


# The pool's CONNECTIONS threads meet at the barrier in waves of CONNECTIONS, each wave
# starting once the one before has committed; a count that is not a multiple of it would
# leave the last wave waiting out the barrier's timeout. Two waves are the whole race:
# the first creates the budget's row at once and takes 40 of it (a lost update shows
# there), the second sends 40 requests at the last 10. Without the guarded UPDATE (a
# count read and then written, or no WHERE on it) that second wave grants more than 10;
# later waves, once the budget is spent, only repeated the refusal (200 requests were five
# waves, most of the time spent writing their members one batch each).
REQUESTS = 2 * CONNECTIONS


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_80_requests_racing_for_a_budget_of_50_grant_exactly_50(
        engine, pg_engine, points_tenant):
    tenant = points_tenant(campaigns=[campaign(budget_count=50)])
    add_members(engine, tenant, *(f"M{i}" for i in range(REQUESTS)))  # one batch
    members = [earn(engine, tenant, f"M{i}", 2000) for i in range(REQUESTS)]
    answers = _race(pg_engine, tenant, [(m, {"exit": "amazon", "value": 1000}, f"k{m}")
                                        for m in members])
    assert answers.count("granted") == 50
    assert answers.count("campaign_budget_exhausted") == REQUESTS - 50
    with pg_engine.connect() as conn:
        assert conn.execute(text(
            "SELECT count(*), sum(points) FROM exchanges WHERE tenant_id = :t "
            "AND campaign = 'amazon-95'"), {"t": tenant.id}).one() == (50, 50 * 950)
        assert conn.execute(text("SELECT used_count FROM campaign_usage WHERE tenant_id = :t"),
                            {"t": tenant.id}).scalar_one() == 50


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_exchanges_racing_for_one_members_points_never_spend_more_than_held(
        engine, pg_engine, points_tenant):
    tenant = points_tenant()
    member = earn(engine, tenant, "M1", 5000)
    calls = [(member, {"exit": "amazon", "value": 1000}, f"k{i}") for i in range(CONNECTIONS)]
    answers = _race(pg_engine, tenant, calls)
    assert answers.count("granted") == 5
    assert set(answers) == {"granted", "insufficient_points"}
    assert buckets(engine, tenant, member) == {**buckets(engine, tenant, member),
                                               "available": 0, "reserved": 5000}
    with Session(engine) as session:
        assert unbalanced_entries(session, tenant.id) == []


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_one_idempotency_key_sent_many_times_at_once_reserves_once(
        engine, pg_engine, points_tenant):
    tenant = points_tenant()
    member = earn(engine, tenant, "M1", 5000)
    answers = _race(pg_engine, tenant,
                    [(member, {"exit": "amazon", "value": 1000}, "same")] * 20)
    assert set(answers) == {"granted"}  # one made it, the others answered with it
    assert buckets(engine, tenant, member)["reserved"] == 1000
