"""Property: whatever sequence of earnings, exchanges, cancellations, deliveries, failures,
bank returns (before or after delivery) and expiries happens, every point earned is in exactly one place: available + reserved +
exchanged + expired, each exchange's points are where its state says, and every entry
balances."""
from __future__ import annotations

import datetime as dt
import secrets
import uuid

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.exchanges import zengin
from settlement.exchanges.amazon import IncentivesClient
from settlement.exchanges.expiry import expire_points
from settlement.exchanges.fulfil import Partners, fulfil_exchanges
from settlement.exchanges.models import Exchange
from settlement.exchanges.quote import ExchangeError
from settlement.exchanges.service import cancel_exchange, request_exchange
from settlement.ledger.service import member_balances, unbalanced_entries
from settlement.models import Tenant
from sandboxes import partners as partner_sandbox
from sandboxes.amazon import serve
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import apply_policy, policy_of
from tests.conftest import TenantHandle, policy_document
from tests.exchanges.conftest import BANK, EXITS, NOW, earn, member_id

MEMBERS = ("a", "b")
START = dt.date(2026, 5, 1)
exchange = st.tuples(st.just("exchange"), st.sampled_from(MEMBERS),
                     st.sampled_from(["amazon", "paypay", "paypay-closed", "bank"]),
                     st.integers(1, 20))
op = st.one_of(
    st.tuples(st.just("earn"), st.sampled_from(MEMBERS), st.integers(1, 3000),
              st.integers(0, 200)),
    exchange, exchange,
    st.tuples(st.just("cancel"), st.sampled_from(MEMBERS), st.integers(0, 5)),
    st.tuples(st.just("fulfil"), st.sampled_from([False, False, True])),  # True: refused
    st.tuples(st.just("expire"), st.integers(0, 120)),
    st.tuples(st.just("bank_return"), st.integers(0, 3)),  # the nth transfer in a file
)


@pytest.fixture(scope="module")
def amazon():
    with serve(funds=10 ** 12) as server:
        yield server


def _tenant(engine) -> TenantHandle:
    slug = f"x-{uuid.uuid4().hex[:10]}"
    doc = policy_document(slug, "JPY", exits=EXITS,
                          points={"expiry": {"rule": "inactivity", "days": 90}},
                          campaigns=[{"name": "amazon-90", "exit": "amazon", "budget_count": 3,
                                      "starts": "2026-11-01T00:00:00+09:00",
                                      "ends": "2026-12-01T00:00:00+09:00",
                                      "rate": {"points": 90, "value": 100}}])
    with Session(engine) as session:
        tenant, _ = apply_policy(session, TenantPolicy.model_validate(doc))
        session.commit()
        return TenantHandle(tenant.id, slug, "JPY")


def _apply(engine, tenant, partners, amazon, step, earned, outbox) -> None:
    kind = step[0]
    with Session(engine) as session:
        policy = policy_of(session.get(Tenant, tenant.id))
    if kind == "earn":
        _, who, yen, day = step
        earn(engine, tenant, who, yen, on=START + dt.timedelta(days=day))
        earned[who] += yen
    elif kind == "exchange":
        _, who, exit_name, hundreds = step
        closed = exit_name == "paypay-closed"
        body = {"exit": "paypay" if closed else exit_name, "value": hundreds * 100}
        if body["exit"] == "paypay":
            body["destination"] = {"account": "pp-0000" if closed else "pp-1"}
        if body["exit"] == "bank":
            body["destination"] = BANK
        with Session(engine) as session:
            try:
                request_exchange(session, tenant.id, policy, member_id(engine, tenant, who),
                                 body, secrets.token_hex(6), NOW)
                session.commit()
            except ExchangeError:
                session.rollback()
    elif kind == "cancel":
        _, who, nth = step
        with Session(engine) as session:
            mid = member_id(engine, tenant, who)
            ids = session.scalars(select(Exchange.id).where(
                Exchange.tenant_id == tenant.id, Exchange.member_id == mid)
                .order_by(Exchange.id)).all()
            if nth < len(ids):
                try:
                    cancel_exchange(session, tenant.id, policy, mid, ids[nth])
                    session.commit()
                except ExchangeError:
                    session.rollback()
    elif kind == "fulfil":
        if step[1]:
            with Session(engine) as session:
                for exchange_id in session.scalars(select(Exchange.id).where(
                        Exchange.tenant_id == tenant.id, Exchange.status == "requested",
                        Exchange.kind == "gift_code")):
                    amazon.sandbox.script(f"SandbT{tenant.id}E{exchange_id}", "F300")
        later = NOW.date() + dt.timedelta(days=7)
        fulfil_exchanges(engine, tenant.id, partners, later)
        for folder, partner, key in partner_sandbox.unanswered(outbox):
            partner_sandbox.respond(folder, partner, key)
        fulfil_exchanges(engine, tenant.id, partners, later)
    elif kind == "bank_return":
        files = sorted(outbox.rglob("zengin-*.txt"))
        sent = [(path, int(record["customer_code1"])) for path in files
                for record in zengin.parse_file(path.read_bytes()) if record["kind"] == "2"]
        if step[1] < len(sent):
            path, reference = sent[step[1]]
            partner_sandbox.return_transfers(path, {reference: "3"}, NOW.date())
            fulfil_exchanges(engine, tenant.id, partners, NOW.date() + dt.timedelta(days=7))
    else:
        with Session(engine) as session:
            expire_points(session, tenant.id, policy, START + dt.timedelta(days=step[1]))
            session.commit()


def _check(engine, tenant, earned) -> None:
    with Session(engine) as session:
        assert unbalanced_entries(session, tenant.id) == []
        for who, total in earned.items():
            if not total:
                continue
            mid = member_id(engine, tenant, who)
            held = member_balances(session, tenant.id, mid)
            parts = {k: held.get(k, 0) for k in ("available", "reserved", "exchanged",
                                                 "breakage")}
            assert sum(parts.values()) == total, (who, parts, total)
            assert all(v >= 0 for v in parts.values()), parts
            by_state = dict(session.execute(select(Exchange.status, func.sum(Exchange.debit))
                                            .where(Exchange.tenant_id == tenant.id,
                                                   Exchange.member_id == mid)
                                            .group_by(Exchange.status)).all())
            for state in by_state:
                event(f"an exchange ended {state}")
            event(f"expired: {bool(parts['breakage'])}")
            returned = session.scalar(select(func.count()).select_from(Exchange).where(
                Exchange.tenant_id == tenant.id, Exchange.member_id == mid,
                Exchange.provider_status == "RETURNED"))
            event(f"a bank transfer came back: {bool(returned)}")
            assert parts["exchanged"] == by_state.get("delivered", 0)
            assert parts["reserved"] == by_state.get("requested", 0) + \
                by_state.get("processing", 0)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(op, min_size=6, max_size=16))
def test_points_earned_are_available_reserved_exchanged_or_expired_whatever_happens(
        engine, amazon, tmp_path_factory, steps):
    tenant = _tenant(engine)
    outbox = tmp_path_factory.mktemp("outbox")
    client = IncentivesClient(amazon.base_url, "Sandb", "sandbox-access-key",
                              "sandbox-secret-key", "us-west-2", timeout=5)
    partners = Partners(amazon=client, outbox=str(outbox), code_key=secrets.token_bytes(32))
    earned = {who: 0 for who in MEMBERS}
    for step in [("earn", who, 5000, 0) for who in MEMBERS] + steps:
        _apply(engine, tenant, partners, amazon, step, earned, outbox)
    _check(engine, tenant, earned)
