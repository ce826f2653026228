"""GET /v1/members/{external_id}/referrals, GET /v1/referrals and the review of held
referrals, through the HTTP API on both databases: members written with PUT and imports,
purchases uploaded as reports, amounts as decimal strings, statuses in the words users know,
reasons an operator can read, roles and tenants."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.access.service import create_key
from tests.referrals.helpers import ADDRESS, STANDARD, make_tenant, row

PROBLEM = "application/problem+json"
HEADER = ("transaction_id,order_id,member,retailer,category,event_date,sale_amount,"
          "commission_amount,currency,status")


class Api:
    def __init__(self, client, engine, **policy):
        self.client = client
        self.tenant = make_tenant(engine, **policy)
        with Session(engine) as session:
            self.keys = {role: create_key(session, self.tenant.id, role)
                         for role in ("uploader", "operator", "approver", "admin")}
            session.commit()

    def h(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def member(self, external_id: str, **fields):
        body = {"joined_at": "2026-09-01", **ADDRESS, "payout_method": "check", **fields}
        response = self.client.put(f"/v1/members/{external_id}", json=body, headers=self.h("admin"))
        assert response.status_code == 200, response.get_json()

    def upload(self, *rows: str, as_of: str = "2026-11-01T12:00:00Z") -> dict:
        body = ("\n".join((HEADER, *rows)) + "\n").encode()
        response = self.client.post("/v1/reports", data=body, content_type="text/csv",
                                    query_string={"as_of": as_of}, headers=self.h("uploader"))
        assert response.status_code == 202, response.get_json()
        return response.get_json()

    def referrals(self, external_id: str, role: str = "operator"):
        return self.client.get(f"/v1/members/{external_id}/referrals", headers=self.h(role))

    def listed(self, external_id: str) -> list[dict]:
        response = self.referrals(external_id)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["member"] == external_id and body["currency"] == "USD"
        return body["referrals"]

    def review(self, friend: str, decision: str, role: str = "operator"):
        return self.client.post(f"/v1/members/{friend}/referral/review",
                                json={"decision": decision}, headers=self.h(role))


@pytest.fixture
def api(client, engine) -> Api:
    return Api(client, engine)


def test_a_member_sees_referrals_as_referrer_and_as_friend_with_their_own_bonus(api):
    api.member("R1", joined_at="2026-01-05")
    api.member("F1", referred_by="R1", address_line1="9 Elm St")
    api.member("F2", referred_by="R1", address_line1="10 Elm St", joined_at="2026-10-01")
    (waiting,) = api.listed("F2")
    assert (waiting["status"], waiting["stage"], waiting["role"]) == (
        "pending", "awaiting_purchase", "friend")
    assert waiting["window_end"] == "2026-12-30" and waiting["purchase"] is None
    api.upload(row("t1", "F1", sale="100.00"))
    (friend_view,) = api.listed("F1")
    assert friend_view["role"] == "friend" and friend_view["referrer"] == "R1"
    assert (friend_view["status"], friend_view["stage"]) == ("pending", "awaiting_confirmation")
    assert friend_view["purchase"] == {"source": "generic", "transaction_id": "t1",
                                       "event_date": "2026-09-10", "status": "pending"}
    assert friend_view["bonuses"]["friend"] == {
        "member": "F1", "amount": "20.00", "points": None, "points_method": None,
        "status": "pending", "confirmed_on": None, "reason": None}
    assert friend_view["bonuses"]["referrer"]["amount"] == "30.00"
    api.upload(row("t1", "F1", sale="100.00", status="confirmed"),
               as_of="2026-11-02T12:00:00Z")
    referrer_view = api.listed("R1")
    assert [(r["role"], r["friend"], r["status"]) for r in referrer_view] == [
        ("referrer", "F1", "earned"), ("referrer", "F2", "pending")]
    assert referrer_view[0]["bonuses"]["referrer"]["confirmed_on"] == "2026-11-02"


def test_a_voided_pair_is_listed_and_the_referral_waits_for_another_purchase(api):
    api.member("R1")
    api.member("F1", referred_by="R1", address_line1="9 Elm St")
    api.upload(row("t1", "F1"))
    api.upload(row("t1", "F1", status="reversed"), as_of="2026-11-02T12:00:00Z")
    (view,) = api.listed("F1")
    assert (view["status"], view["stage"], view["bonuses"]) == ("pending", "awaiting_purchase", {})
    assert sorted((v["side"], v["transaction_id"], v["amount"]) for v in view["voided"]) == [
        ("friend", "t1", "20.00"), ("referrer", "t1", "30.00")]


def _audit(engine, tenant) -> list[tuple]:
    with engine.connect() as conn:
        return [(a, json.loads(d) if d else None) for a, d in conn.execute(text(
            "SELECT action, detail FROM audit_log WHERE tenant_id = :t "
            "AND object_type = 'referral' ORDER BY id"), {"t": tenant.id})]


def test_a_held_referral_names_its_reason_and_an_operator_approves_it(api, engine):
    api.member("R1", paypal_email="shared@example.com", payout_method="paypal")
    api.member("F1", referred_by="R1", address_line1="9 Elm St",
               paypal_email="shared@example.com")
    api.upload(row("t1", "F1"))
    (held,) = api.listed("F1")
    assert held["status"] == "held" and held["reason"] == {
        "code": "shared_payout_destination",
        "message": "F1 and R1 share a payout destination (PayPal e-mail, Amex or Bilt "
                   "account): held for review"}
    page = api.client.get("/v1/referrals?status=held", headers=api.h("approver")).get_json()
    assert [r["friend"] for r in page["referrals"]] == ["F1"] and page["next_cursor"] is None
    refused = api.review("F1", "approve", role="approver")
    assert refused.status_code == 403 and refused.mimetype == PROBLEM
    approved = api.review("F1", "approve")
    assert approved.status_code == 200, approved.get_json()
    assert approved.json["status"] == "pending" and approved.json["bonuses"]["friend"][
        "status"] == "pending"
    again = api.review("F1", "reject")
    assert again.status_code == 409 and again.json["errors"][0]["code"] == "not_held"
    assert _audit(engine, api.tenant) == [("referral.approved", {"friend": "F1"})]


def test_a_rejected_referral_is_refused_with_the_reviewer_named(api):
    api.member("R1")
    api.member("F1", referred_by="R1")  # the same address
    api.upload(row("t1", "F1"))
    assert api.review("F1", "reject").status_code == 200
    (view,) = api.listed("F1")
    assert view["status"] == "refused" and view["reason"]["code"] == "rejected_on_review"
    assert view["reason"]["message"].startswith("rejected on review by key:")


def test_the_cap_shows_as_the_referrers_refused_bonus(client, engine):
    api = Api(client, engine, referrals=({**STANDARD, "cap_per_referrer_per_year": 1},))
    api.member("R1")
    api.member("F1", referred_by="R1", address_line1="1 Elm St")
    api.member("F2", referred_by="R1", address_line1="2 Elm St")
    api.upload(row("t1", "F1", day="2026-09-03", status="confirmed"),
               row("t2", "F2", day="2026-09-04", status="confirmed"))
    views = {r["friend"]: r for r in api.listed("R1")}
    assert views["F1"]["status"] == "earned"
    assert views["F2"]["status"] == "refused"
    assert views["F2"]["reason"] == {
        "code": "referrer_cap_reached",
        "message": "R1 already has the yearly cap of 1 referral bonuses for 2026"}
    (friend,) = api.listed("F2")
    assert friend["status"] == "earned" and friend["bonuses"]["friend"]["amount"] == "20.00"


def test_unknown_members_other_tenants_and_missing_keys_answer_problems(api, client, engine):
    api.member("R1")
    api.member("F1", referred_by="R1", address_line1="9 Elm St")
    missing = api.referrals("NOPE")
    assert missing.status_code == 404 and missing.mimetype == PROBLEM
    other = Api(client, engine)
    assert other.referrals("F1").status_code == 404
    assert other.review("F1", "approve").status_code == 404
    assert client.get("/v1/members/F1/referrals").status_code == 401
    assert api.referrals("F1", role="uploader").status_code == 403
    bad = api.client.post("/v1/members/F1/referral/review", json={"decision": "maybe"},
                          headers=api.h("operator"))
    assert bad.status_code == 422 and bad.mimetype == PROBLEM
    not_held = api.review("F1", "approve")
    assert not_held.status_code == 409 and not_held.mimetype == PROBLEM
    bad_status = client.get("/v1/referrals?status=lost", headers=api.h("operator"))
    assert bad_status.status_code == 422


def test_the_referrals_list_pages_with_a_cursor(api):
    api.member("R1")
    for n in range(1, 6):
        api.member(f"F{n}", referred_by="R1", address_line1=f"{n} Elm St")
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/v1/referrals", query_string=query,
                              headers=api.h("operator")).get_json()
        seen += [r["friend"] for r in page["referrals"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["F1", "F2", "F3", "F4", "F5"]
    assert api.client.get("/v1/referrals?cursor=@@", headers=api.h("operator")).status_code == 400


def test_the_openapi_document_describes_the_referral_routes(client):
    paths = client.get("/v1/openapi.json").get_json()["paths"]
    assert {"get"} <= set(paths["/v1/members/{external_id}/referrals"])
    assert {"get"} <= set(paths["/v1/referrals"])
    assert {"post"} <= set(paths["/v1/members/{external_id}/referral/review"])
