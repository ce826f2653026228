"""The exchange part of the tenant policy: exits, campaigns, points unit, expiry."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from settlement.tenants.policy import TenantPolicy

AMAZON = {"kind": "gift_code", "partner": "amazon_jp", "rate": {"points": 1, "value": 1},
          "minimum_value": 300}


def _policy(**overrides) -> dict:
    doc = {"slug": "jp-test", "name": "JP", "currency": "JPY", "timezone": "Asia/Tokyo",
           "exits": {"amazon": AMAZON}}
    doc.update(overrides)
    return doc


def test_a_points_tenant_with_exits_needs_no_payout_dates():
    policy = TenantPolicy.model_validate(_policy())
    assert policy.payouts.dates == ()
    assert policy.exits["amazon"].minimum_value == 300


def test_a_tenant_without_exits_still_needs_its_payouts_section():
    with pytest.raises(ValidationError, match="payouts"):
        TenantPolicy.model_validate(_policy(exits={}))


def test_exit_points_must_be_whole_yen_at_ten_points_per_yen():
    with pytest.raises(ValidationError, match="fee_points: 5 is not a multiple"):
        TenantPolicy.model_validate(_policy(
            points={"points_per_unit": 10},
            exits={"amazon": {**AMAZON, "rate": {"points": 10, "value": 1}, "fee_points": 5}}))


def test_a_campaign_names_a_known_exit_and_one_kind_of_preference():
    campaign = {"name": "amz", "exit": "nope", "starts": "2026-11-01T00:00:00+09:00",
                "ends": "2026-12-01T00:00:00+09:00", "bonus_percent": 5}
    with pytest.raises(ValidationError, match="no exit 'nope'"):
        TenantPolicy.model_validate(_policy(campaigns=[campaign]))
    with pytest.raises(ValidationError, match="either a rate or a bonus_percent"):
        TenantPolicy.model_validate(_policy(campaigns=[
            {**campaign, "exit": "amazon", "rate": {"points": 95, "value": 100}}]))


def test_expiry_rules_take_their_own_term():
    with pytest.raises(ValidationError, match="inactivity expiry takes days"):
        TenantPolicy.model_validate(_policy(points={"expiry": {"rule": "inactivity",
                                                               "months": 6}}))
    policy = TenantPolicy.model_validate(_policy(points={"expiry": {"rule": "fixed_term",
                                                                    "months": 6}}))
    assert policy.points.expiry.months == 6


def test_a_bank_fee_table_is_keyed_by_four_digit_bank_codes():
    bank = {"kind": "bank_transfer", "partner": "zengin", "rate": {"points": 1, "value": 1},
            "fee_points": 220, "fee_points_by_bank": {"0005": 0, "12": 110},
            "originator": {"client_code": "1234567890", "name": "ｻｲﾄ", "bank_code": "0001",
                           "branch_code": "001", "account_number": "7654321"}}
    with pytest.raises(ValidationError, match="not a 4-digit bank code"):
        TenantPolicy.model_validate(_policy(exits={"bank": bank}))


def test_the_fixture_point_sites_have_every_exit_a_campaign_and_expiry():
    from pathlib import Path

    from settlement.tenants.policy import load_policy
    root = Path(__file__).parents[2] / "fixtures"
    jp = load_policy(root / "tenants" / "jp-points.json")
    assert {e.kind for e in jp.exits.values()} == {"gift_code", "bank_transfer",
                                                   "points_transfer"}
    assert (jp.exits["amazon"].minimum_value, jp.exits["bank"].minimum_value) == (300, 1000)
    assert jp.campaigns[0].budget_count and jp.points.expiry.rule == "inactivity"
    ten = load_policy(root / "points" / "jp-tenpoints.json")
    assert ten.points.points_per_unit == 10 and ten.payouts.dates == ()
