"""Exchange requests: the quote, the reservation, and every refusal (both databases)."""
from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from api.errors import http_status
from settlement.exchanges.quote import ExchangeError
from settlement.exchanges.service import cancel_exchange, request_exchange
from settlement.tenants.service import policy_of
from settlement.models import Tenant
from tests.exchanges.conftest import BANK, NOW, buckets, campaign, earn


def ask(engine, tenant, mid, body, key="k1", moment=NOW):
    with Session(engine, expire_on_commit=False) as session:
        policy = policy_of(session.get(Tenant, tenant.id))
        try:
            exchange, replayed = request_exchange(session, tenant.id, policy, mid, body, key,
                                                  moment)
            session.commit()
            return exchange, replayed
        except ExchangeError:
            session.rollback()
            raise


def refused(engine, tenant, mid, body, key="k1") -> ExchangeError:
    with pytest.raises(ExchangeError) as caught:
        ask(engine, tenant, mid, body, key)
    return caught.value


def test_a_request_quotes_and_reserves_the_points_at_once(engine, points_tenant):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    exchange, replayed = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    assert not replayed
    assert (exchange.status, exchange.points, exchange.fee_points, exchange.debit) == \
        ("requested", 1000, 0, 1000)
    assert exchange.credit_on == NOW.date()
    assert buckets(engine, tenant, mid)["available"] == 4000
    assert buckets(engine, tenant, mid)["reserved"] == 1000


def test_a_bank_transfer_charges_the_fee_of_the_destination_bank(engine, points_tenant):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    free, _ = ask(engine, tenant, mid, {"exit": "bank", "value": 1000, "destination": BANK})
    other, _ = ask(engine, tenant, mid, {"exit": "bank", "value": 1000,
                                         "destination": {**BANK, "bank_code": "0009"}}, "k2")
    assert (free.fee_points, other.fee_points) == (0, 330)
    assert buckets(engine, tenant, mid)["reserved"] == 2330
    # Thursday 19 Nov + 3 business days, Monday 23 being Labor Thanksgiving Day.
    assert str(free.credit_on) == "2026-11-25"


def test_points_in_the_request_buy_the_value_at_the_exit_rate(engine, points_tenant):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 10000)
    exchange, _ = ask(engine, tenant, mid, {"exit": "pex", "points": 500,
                                            "destination": {"account": "pex-1"}})
    assert (exchange.value, exchange.points) == (5000, 500)


def test_the_same_key_and_body_answer_the_same_exchange_and_another_body_is_refused(
        engine, points_tenant):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    first, _ = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    again, replayed = ask(engine, tenant, mid, {"value": 1000, "exit": "amazon"})
    assert replayed and again.id == first.id
    error = refused(engine, tenant, mid, {"exit": "amazon", "value": 2000})
    assert (http_status(error.code), error.code, error.field) == (
        422, "idempotency_key_reused", "Idempotency-Key")
    assert buckets(engine, tenant, mid)["reserved"] == 1000


@pytest.mark.parametrize("body, code, field", [
    ({"exit": "amazon", "value": 299}, "below_minimum", "value"),
    ({"exit": "amazon", "value": 60000}, "above_maximum", "value"),
    ({"exit": "amazon", "value": 0}, "not_positive", "value"),
    ({"exit": "amazon", "value": -500}, "not_positive", "value"),
    ({"exit": "amazon", "value": "500"}, "not_an_integer", "value"),
    ({"exit": "amazon", "value": 500.0}, "not_an_integer", "value"),
    ({"exit": "amazon"}, "value_or_points", "value"),
    ({"exit": "amazon", "value": 500, "points": 500}, "value_or_points", "value"),
    ({"exit": "amazon_fixed", "value": 700}, "not_a_denomination", "value"),
    ({"exit": "pex", "value": 5005, "destination": {"account": "x"}}, "not_on_step", "value"),
    ({"exit": "amazon_fixed", "points": 700}, "not_a_denomination", "points"),
    ({"exit": "nowhere", "value": 500}, "unknown_exit", "exit"),
    ({"exit": "closed", "value": 500}, "exit_disabled", "exit"),
    ({"exit": "bank", "value": 1000}, "missing_destination", "destination"),
    ({"exit": "bank", "value": 1000, "destination": {**BANK, "branch_code": "12"}},
     "invalid_destination", "destination.branch_code"),
    ({"exit": "bank", "value": 1000, "destination": {**BANK, "account_name": "山田太郎"}},
     "invalid_destination", "destination.account_name"),
    ({"exit": "amazon", "value": 500, "note": "x"}, "unknown_field", "note"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_requests_are_refused_naming_the_field_and_nothing_is_reserved(
        engine, points_tenant, body, code, field):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 100000)
    error = refused(engine, tenant, mid, body)
    assert (error.code, error.field) == (code, field)
    assert buckets(engine, tenant, mid)["reserved"] == 0
    assert buckets(engine, tenant, mid)["available"] == 100000


def test_more_points_than_available_are_refused(engine, points_tenant):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 1200)
    error = refused(engine, tenant, mid, {"exit": "bank", "value": 1000,
                                          "destination": {**BANK, "bank_code": "0009"}})
    assert error.code == "insufficient_points" and "1330 points" in error.message
    assert buckets(engine, tenant, mid)["available"] == 1200


def test_the_monthly_cap_counts_live_exchanges_of_the_month(engine, points_tenant):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 100000)
    ask(engine, tenant, mid, {"exit": "amazon", "value": 20000}, "a")
    assert refused(engine, tenant, mid, {"exit": "amazon", "value": 10001}, "b").code == \
        "over_monthly_cap"
    ask(engine, tenant, mid, {"exit": "amazon", "value": 10000}, "c")


def test_a_campaign_rate_is_quoted_by_name_and_its_count_budget_runs_out(engine, points_tenant):
    tenant = points_tenant(campaigns=[campaign(budget_count=2)])
    mids = [earn(engine, tenant, f"M{i}", 5000) for i in range(3)]
    first, _ = ask(engine, tenant, mids[0], {"exit": "amazon", "value": 1000})
    assert (first.campaign, first.points) == ("amazon-95", 950)
    ask(engine, tenant, mids[1], {"exit": "amazon", "value": 1000})
    error = refused(engine, tenant, mids[2], {"exit": "amazon", "value": 1000})
    assert (http_status(error.code), error.code) == (409, "campaign_budget_exhausted")
    regular, _ = ask(engine, tenant, mids[2], {"exit": "amazon", "value": 1000,
                                               "use_campaign": False}, "k2")
    assert (regular.campaign, regular.points) == (None, 1000)


def test_a_campaign_outside_its_window_does_not_apply(engine, points_tenant):
    tenant = points_tenant(campaigns=[campaign(starts="2026-11-20T00:00:00+09:00")])
    mid = earn(engine, tenant, "M1", 5000)
    exchange, _ = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    assert (exchange.campaign, exchange.points) == (None, 1000)


def test_a_bonus_campaign_adds_value_and_its_member_cap_holds(engine, points_tenant):
    tenant = points_tenant(campaigns=[campaign(rate=None, bonus_percent=5,
                                               per_member_count=1)])
    mid = earn(engine, tenant, "M1", 5000)
    exchange, _ = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    assert (exchange.value, exchange.bonus_value, exchange.points) == (1000, 50, 1000)
    assert refused(engine, tenant, mid, {"exit": "amazon", "value": 1000}, "k2").code == \
        "campaign_member_cap"


def test_a_value_budget_is_given_back_by_a_cancel(engine, points_tenant):
    tenant = points_tenant(campaigns=[campaign(budget_value=1000)])
    a, b = earn(engine, tenant, "A", 5000), earn(engine, tenant, "B", 5000)
    exchange, _ = ask(engine, tenant, a, {"exit": "amazon", "value": 1000})
    assert refused(engine, tenant, b, {"exit": "amazon", "value": 300}).code == \
        "campaign_budget_exhausted"
    with Session(engine) as session:
        policy = policy_of(session.get(Tenant, tenant.id))
        cancel_exchange(session, tenant.id, policy, a, exchange.id)
        session.commit()
    assert buckets(engine, tenant, a)["available"] == 5000
    assert ask(engine, tenant, b, {"exit": "amazon", "value": 300})[0].campaign == "amazon-95"


def test_only_a_requested_exchange_can_be_cancelled(engine, points_tenant):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    exchange, _ = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    with Session(engine) as session:
        policy = policy_of(session.get(Tenant, tenant.id))
        cancel_exchange(session, tenant.id, policy, mid, exchange.id)
        session.commit()
        with pytest.raises(ExchangeError) as caught:
            cancel_exchange(session, tenant.id, policy, mid, exchange.id)
    assert caught.value.code == "not_cancellable"
    assert buckets(engine, tenant, mid)["available"] == 5000


def test_ten_points_per_yen_debits_whole_yen(engine, points_tenant):
    exits = {"amazon": {"kind": "gift_code", "partner": "amazon_jp",
                        "rate": {"points": 10, "value": 1}, "minimum_value": 300}}
    tenant = points_tenant(exits=exits, points={"points_per_unit": 10})
    mid = earn(engine, tenant, "M1", 1000)  # 10,000 points
    exchange, _ = ask(engine, tenant, mid, {"exit": "amazon", "value": 500})
    assert (exchange.points, exchange.debit) == (5000, 500)
    assert buckets(engine, tenant, mid)["available"] == 500
