"""Network reports through the API as the networks send them (issue 12): network accounts as
the identity of a transaction, and what an upload of each network is refused for."""
from __future__ import annotations

import json

CJ_RECORD = {
    "commissionId": "3179263458", "orderId": "MCY-88213405", "shopperId": "M1",
    "advertiserId": "4518721", "eventDate": "2026-06-03T14:12:45-0700",
    "saleAmountUsd": "194.53", "pubCommissionAmountUsd": "7.781", "actionStatus": "closed",
    "validationStatus": "ACCEPTED", "original": True,
}


def cj_body(*records: dict, indent: int | None = None) -> bytes:
    return json.dumps({"data": {"publisherCommissions": {
        "count": len(records), "payloadComplete": True, "records": list(records)}}},
        indent=indent).encode()


def _cj_api(api_for, **networks):
    api = api_for(networks={"cj": networks} if networks else {})
    api.setup(members=("M1",), rate=None)
    assert api.rule(kind="percent_of_commission", rate="50").status_code == 201
    assert api.put_retailer("macys", network_ids={"cj": "4518721"}).status_code == 200
    return api


def _upload_cj(api, body: bytes, **query):
    return api.upload(body, "application/json", format="cj", **query)


def test_same_cj_transaction_under_another_source_label_is_refused_not_counted_twice(api_for):
    api = _cj_api(api_for)
    first = _upload_cj(api, cj_body(CJ_RECORD))
    assert first.status_code == 202, first.get_json()
    again = _upload_cj(api, cj_body(CJ_RECORD), source="cj-api")
    assert again.status_code == 422
    problem = again.get_json()
    assert problem["errors"][0]["field"] == "source"
    assert problem["errors"][0]["code"] == "unknown_account"
    assert "one of: cj" in problem["errors"][0]["message"]
    assert api.money("M1") == ("0.00", "3.89")


def test_declared_cj_account_is_the_default_source_and_restated_lines_are_unchanged(api_for):
    api = _cj_api(api_for, accounts=["1234567"])
    first = _upload_cj(api, cj_body(CJ_RECORD))
    assert first.status_code == 202, first.get_json()
    assert api.report(first.get_json()["id"])["source"] == "cj:1234567"
    # The same records in other bytes (as another API call returns them), named explicitly.
    second = _upload_cj(api, cj_body(CJ_RECORD, indent=2), source="1234567")
    assert second.status_code == 202, second.get_json()
    report = api.report(second.get_json()["id"])
    assert (report["counts"]["inserted"], report["counts"]["unchanged"]) == (0, 1)
    assert api.money("M1") == ("0.00", "3.89")


def test_two_declared_accounts_require_the_source_and_name_both_when_it_is_wrong(api_for):
    api = _cj_api(api_for, accounts=["1234567", "7654321"])
    missing = _upload_cj(api, cj_body(CJ_RECORD))
    assert missing.status_code == 422
    assert "1234567, 7654321" in missing.get_json()["errors"][0]["message"]
    assert _upload_cj(api, cj_body(CJ_RECORD), source="cj").status_code == 422
    one = _upload_cj(api, cj_body(CJ_RECORD), source="7654321")
    other = _upload_cj(api, cj_body(CJ_RECORD), source="1234567")
    assert (one.status_code, other.status_code) == (202, 202)
    # Two accounts are two identities: each account's transaction is its own commission.
    assert api.report(other.get_json()["id"])["counts"]["inserted"] == 1


def test_openapi_documents_source_as_the_network_account(client):
    spec = client.get("/v1/openapi.json").get_json()
    parameters = spec["paths"]["/v1/reports"]["post"]["parameters"]
    source = next(p for p in parameters if p["name"] == "source")
    assert "networks.<format>.accounts" in source["description"]


def test_ndjson_body_for_rakuten_answers_415_naming_what_it_reads(api):
    response = api.upload(b'{"u1": "M1"}\n', "application/x-ndjson", format="rakuten")
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"
    error = response.get_json()["errors"][0]
    assert (error["field"], error["code"]) == ("content-type", "unsupported_media")
    assert "text/csv, application/json" in error["message"]


def test_cj_csv_answers_415_naming_json_and_ndjson(api):
    response = api.upload(b"commissionId\n1\n", "text/csv", format="cj")
    assert response.status_code == 415
    message = response.get_json()["errors"][0]["message"]
    assert "application/json" in message and "application/x-ndjson" in message


def test_retailer_holding_period_is_set_by_put_and_bounded(api):
    ok = api.client.put("/v1/retailers/nordstrom", headers=api.h("admin"), json={
        "name": "Nordstrom", "network_ids": {"rakuten": "1237"}, "confirm_after_days": 0})
    assert ok.status_code == 200 and ok.get_json()["confirm_after_days"] == 0
    bad = api.client.put("/v1/retailers/nordstrom", headers=api.h("admin"), json={
        "name": "Nordstrom", "confirm_after_days": 731})
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0]["field"] == "confirm_after_days"


def test_rakuten_events_api_json_is_read_and_held_by_the_networks_holding_period(api_for):
    api = api_for(networks={"rakuten": {"confirm_after_days": 30}})
    api.setup(members=("HP000012",), rate="4")
    assert api.put_retailer("style", network_ids={"rakuten": "43245"}).status_code == 200
    events = [{"etransaction_id": "c8f6e1d04b7a", "advertiser_id": 43245,
               "order_id": "O-1", "sku_number": "SKU-1", "sale_amount": 39.8, "quantity": 1,
               "commissions": 0.3995, "u1": "HP000012", "currency": "USD",
               "transaction_date": "Thu Jun 04 2026 16:12:45 GMT+0000 (UTC)",
               "process_date": "Fri Jun 05 2026 03:10:00 GMT+0000 (UTC)"}]
    response = api.upload(json.dumps(events).encode(), "application/json", format="rakuten",
                          as_of="2026-06-20T12:00:00Z")
    assert response.status_code == 202, response.get_json()
    assert api.report(response.get_json()["id"])["counts"]["inserted"] == 1
    assert api.money("HP000012") == ("1.59", "0.00")  # 4% of 39.80, held until 2026-07-04
