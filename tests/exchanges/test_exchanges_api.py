"""The exchange routes: quote and reserve, replay, refusals as problems, list, cancel."""
from __future__ import annotations

from tests.exchanges.conftest import BANK, buckets, earn

PROBLEM = "application/problem+json"


def post(client, tenant, external_id, body, key="k1", role="operator"):
    return client.post(f"/v1/members/{external_id}/exchanges", json=body,
                       headers={**tenant.auth(role), **({"Idempotency-Key": key} if key else {})})


def test_post_answers_201_with_the_quote_and_the_same_key_answers_200_with_it(
        client, engine, points_tenant):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    first = post(client, tenant, "M1", {"exit": "bank", "value": 1000,
                                        "destination": {**BANK, "bank_code": "0009"}})
    assert first.status_code == 201, first.get_json()
    quote = first.get_json()
    assert {k: quote[k] for k in ("status", "value", "points", "fee_points", "points_debited",
                                  "amount", "campaign", "kind", "partner")} == {
        "status": "requested", "value": 1000, "points": 1000, "fee_points": 330,
        "points_debited": 1330, "amount": "1330", "campaign": None, "kind": "bank_transfer",
        "partner": "zengin"}
    assert quote["credit_on"] > quote["requested_on"]
    again = post(client, tenant, "M1", {"exit": "bank", "value": 1000,
                                        "destination": {**BANK, "bank_code": "0009"}})
    assert again.status_code == 200 and again.get_json() == quote
    assert buckets(engine, tenant, mid)["reserved"] == 1330


def test_refusals_are_problems_naming_field_and_code(client, engine, points_tenant):
    tenant = points_tenant()
    earn(engine, tenant, "M1", 500)
    cases = [({"exit": "amazon", "value": 1000}, "k1", 422, "insufficient_points", "value"),
             ({"exit": "amazon", "value": 100}, "k2", 422, "below_minimum", "value"),
             ({"exit": "amazon", "value": 300}, None, 400, "idempotency_key",
              "Idempotency-Key")]
    for body, key, status, code, field in cases:
        answer = post(client, tenant, "M1", body, key)
        assert answer.status_code == status and answer.mimetype == PROBLEM
        error = answer.get_json()["errors"][0]
        assert (error["code"], error["field"]) == (code, field)


def test_another_body_under_a_used_key_answers_422(client, engine, points_tenant):
    tenant = points_tenant()
    earn(engine, tenant, "M1", 5000)
    assert post(client, tenant, "M1", {"exit": "amazon", "value": 1000}).status_code == 201
    answer = post(client, tenant, "M1", {"exit": "amazon", "value": 900})
    assert answer.status_code == 422
    assert answer.get_json()["errors"][0]["code"] == "idempotency_key_reused"


def test_a_member_of_another_tenant_answers_404_and_nothing_moves(client, engine,
                                                                  points_tenant):
    ours, theirs = points_tenant(), points_tenant()
    mid = earn(engine, theirs, "M9", 5000)
    assert post(client, ours, "M9", {"exit": "amazon", "value": 1000}).status_code == 404
    assert buckets(engine, theirs, mid)["reserved"] == 0


def test_list_shows_states_and_a_cancel_returns_the_points(client, engine, points_tenant):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    made = post(client, tenant, "M1", {"exit": "amazon", "value": 1000}).get_json()
    post(client, tenant, "M1", {"exit": "amazon", "value": 500}, "k2")
    cancel = client.post(f"/v1/members/M1/exchanges/{made['id']}/cancel",
                         headers=tenant.auth("operator"))
    assert cancel.status_code == 200 and cancel.get_json()["status"] == "cancelled"
    again = client.post(f"/v1/members/M1/exchanges/{made['id']}/cancel",
                        headers=tenant.auth("operator"))
    assert again.status_code == 409
    listed = client.get("/v1/members/M1/exchanges", headers=tenant.auth("operator")).get_json()
    assert [(e["value"], e["status"]) for e in listed["exchanges"]] == [
        (500, "requested"), (1000, "cancelled")]
    only = client.get("/v1/members/M1/exchanges?status=cancelled",
                      headers=tenant.auth("operator")).get_json()
    assert [e["id"] for e in only["exchanges"]] == [made["id"]]
    assert buckets(engine, tenant, mid)["available"] == 4500


def test_an_exchange_of_another_member_is_not_found_on_this_members_look_up(
        client, engine, points_tenant):
    tenant = points_tenant()
    earn(engine, tenant, "M1", 5000)
    earn(engine, tenant, "M2", 5000)
    made = post(client, tenant, "M1", {"exit": "amazon", "value": 1000}).get_json()
    assert client.get(f"/v1/members/M2/exchanges/{made['id']}",
                      headers=tenant.auth("operator")).status_code == 404
    assert client.get(f"/v1/members/M1/exchanges/{made['id']}",
                      headers=tenant.auth("operator")).get_json()["gift_code"] is None


def test_another_tenants_exchange_answers_404_even_for_a_member_of_the_same_name(
        client, engine, points_tenant):
    ours, theirs = points_tenant(), points_tenant()
    earn(engine, theirs, "M1", 5000)
    earn(engine, ours, "M1", 5000)
    made = post(client, theirs, "M1", {"exit": "amazon", "value": 1000}).get_json()
    for path in (f"/v1/members/M1/exchanges/{made['id']}",):
        assert client.get(path, headers=ours.auth("admin")).status_code == 404
    assert client.post(f"/v1/members/M1/exchanges/{made['id']}/cancel",
                       headers=ours.auth("operator")).status_code == 404
