"""The tenant's `networks` policy: which sub-id carries the member, which accounts exist."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import apply_policy
from tests.conftest import TenantHandle, policy_document
from tests.domain.helpers import add_members, add_retailer, add_rule, balances, ingest

AS_OF = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)


def _tenant(engine, **networks) -> TenantHandle:
    slug = f"n-{uuid.uuid4().hex[:10]}"
    policy = TenantPolicy.model_validate(policy_document(slug, networks=networks))
    with Session(engine) as session:
        tenant, _ = apply_policy(session, policy)
        session.commit()
        handle = TenantHandle(tenant.id, slug, "USD")
    add_retailer(engine, handle, "sephora", network_ids={"impact": "7721"})
    add_rule(engine, handle)  # 50% of the commission
    add_members(engine, handle, "RR000121")
    return handle


def test_impact_member_is_read_from_the_policys_member_field(engine):
    tenant = _tenant(engine, impact={"member_field": "SharedId"})
    action = {"Id": "7721.4309.1182034", "Oid": "SEPH-40021877", "SubId1": "email-2026-06",
              "SharedId": "RR000121", "CampaignId": "7721",
              "EventDate": "2026-06-06T11:32:08-07:00", "Amount": "32252.1922",
              "Payout": "1612.6096", "Currency": "USD", "State": "APPROVED"}
    report = ingest(engine, tenant, json.dumps({"@page": "1", "Actions": [action]}).encode(),
                    fmt="impact", media="json", as_of=AS_OF)
    assert (report.inserted, report.unattributed) == (1, 0)
    assert balances(engine, tenant, "RR000121")["available"] == 80630  # 806.3048 -> 806.30


@pytest.mark.parametrize("networks,message", [
    ({"impact": {"member_field": "SubId4"}}, "SubId1, SubId2, SubId3, SharedId"),
    ({"awin": {"member_field": "clickRef7"}}, "clickRef, clickRef2"),
    ({"cj": {"accounts": ["12 34"]}}, "letters, digits, dots, dashes or underscores"),
    ({"cj": {"accounts": ["a" * 65]}}, "1 to 64"),
    ({"cj": {"accounts": ["1234567", "1234567"]}}, "declared twice"),
    ({"shareasale": {}}, "shareasale"),
])
def test_network_policy_refuses_what_no_network_has(networks, message):
    with pytest.raises(ValidationError, match=message):
        TenantPolicy.model_validate(policy_document("pol", networks=networks))
