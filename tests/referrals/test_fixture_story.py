"""The referral story of the fixtures, as `make demo` tells it: each tenant's members, then
every upload of its uploads.json through the HTTP API, then the sweep of REFERRALS_AS_OF;
every featured referral case ends as featured.json says (qualified and earned, pending on a
points promotion, held for a shared address, expired, voided and waiting, voided and
qualified again by a later purchase, voided and expired), and the ledger balances."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from fixtures.make_reports import REFERRALS_AS_OF
from settlement.access.service import create_key
from settlement.referrals import service as referrals_service
from settlement.tenants.policy import load_policy
from settlement.tenants.service import apply_policy
from tests.referrals.helpers import ledger, referrals

FIXTURES = Path(__file__).parents[2] / "fixtures"
MEDIA = {".csv": "text/csv", ".json": "application/json"}
POLICIES = {"us-cashback": "us-cashback.toml", "jp-points": "jp-points.json"}


def load(client, engine, slug: str):
    """The fixture tenant under a fresh slug, loaded through the API as the demo loads it."""
    policy = load_policy(FIXTURES / "tenants" / POLICIES[slug])
    policy = policy.model_copy(update={"slug": f"{slug[:2]}-{uuid.uuid4().hex[:10]}"})
    with Session(engine) as session:
        tenant, _ = apply_policy(session, policy)
        keys = {role: {"Authorization": f"Bearer {create_key(session, tenant.id, role)}"}
                for role in ("admin", "uploader", "operator")}
        session.commit()
        tenant_id = tenant.id
    for retailer in json.loads((FIXTURES / slug / "retailers.json").read_text()):
        body = {k: retailer[k] for k in ("name", "category", "network_ids")}
        assert client.put(f"/v1/retailers/{retailer['slug']}", json=body,
                          headers=keys["admin"]).status_code == 200
    for rule in json.loads((FIXTURES / slug / "share_rules.json").read_text()):
        assert client.post("/v1/share-rules", json=rule, headers=keys["admin"]).status_code == 201
    imported = client.post("/v1/members/import", data=(FIXTURES / slug / "members.csv")
                           .read_bytes(), content_type="text/csv", headers=keys["admin"])
    assert imported.status_code == 200, imported.get_json()
    for upload in json.loads((FIXTURES / slug / "uploads.json").read_text()):
        path = FIXTURES / upload["file"]
        response = client.post("/v1/reports", data=path.read_bytes(),
                               content_type=MEDIA[path.suffix], headers=keys["uploader"],
                               query_string={"format": upload["format"],
                                             "as_of": upload["as_of"]})
        assert response.status_code == 202, response.get_json()
    return tenant_id, keys


class Handle:
    def __init__(self, tenant_id):
        self.id = tenant_id


@pytest.mark.parametrize("slug", sorted(POLICIES))
def test_every_featured_referral_ends_as_the_fixtures_say(client, engine, slug):
    import datetime as dt

    tenant_id, keys = load(client, engine, slug)
    with Session(engine) as session:
        referrals_service.sweep(session, tenant_id, dt.date.fromisoformat(REFERRALS_AS_OF))
        session.commit()
    stored = referrals(engine, Handle(tenant_id))
    featured = [f for f in json.loads((FIXTURES / slug / "featured.json").read_text())
                if "referral" in f]
    assert featured
    for case in featured:
        expected = case["referral"]
        status, _, purchase = stored[case["member"]]
        assert (status, purchase) == (expected["status"], expected["purchase"]), case["case"]
        (view,) = [r for r in client.get(f"/v1/members/{case['member']}/referrals",
                                         headers=keys["operator"]).get_json()["referrals"]
                   if r["role"] == "friend"]
        assert view["referrer"] == expected["referrer"], case["case"]
        shown = {}
        for side, bonus in view["bonuses"].items():
            shown[side] = (f"{bonus['points']} {bonus['points_method']} points"
                           if bonus["points"] else bonus["amount"])
        wanted = {side: expected[f"{side}_bonus"] for side in ("referrer", "friend")
                  if f"{side}_bonus" in expected}
        assert shown == wanted, case["case"]
        if case["case"].startswith("referral_voided"):
            assert len(view["voided"]) == 2, case["case"]  # one pair voided
    state = ledger(engine, Handle(tenant_id))
    assert state["unbalanced"] == [] and state["expense"] == state["live"] > 0
