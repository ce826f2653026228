"""JSON from strangers (issue 11): nesting that once crashed every JSON route with a
RecursionError, keys given twice, and JSON numbers where amounts are decimal strings."""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, strategies as st

from settlement import jsonsafe

DEEP = "[" * 1000 + "]" * 1000
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}
AS_OF = "2026-11-24T00:00:00Z"


def json_operations(client) -> list[tuple[str, str]]:
    """Every operation that takes a JSON body, its path parameters filled in."""
    document = client.get("/v1/openapi.json").get_json()
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                found.append((method, re.sub(r"\{[^}]+\}", "1", path)))
    return found


def test_every_json_operation_answers_a_body_nested_a_thousand_deep_without_a_500(api):
    operations = json_operations(api.client)
    assert ("post", "/v1/reports") in operations and len(operations) >= 6
    for method, path in operations:
        for role in ("admin", "approver"):  # the role the operation needs
            response = api.client.open(path, method=method.upper(), data=DEEP,
                                       content_type="application/json", headers=api.h(role),
                                       query_string={"as_of": AS_OF})
            if response.status_code != 403:
                break
        assert response.status_code < 500, (method, path, response.get_json())
        if path == "/v1/reports":  # stored, then refused by its job
            report = api.report(response.get_json()["id"])
            assert report["status"] == "failed"
            assert [e["code"] for e in report["errors"]] == ["too_deep"]
        else:
            assert response.status_code == 400, (method, path)
            assert response.get_json()["errors"][0]["code"] == "too_deep"


def test_the_paypal_webhook_refuses_unsigned_deep_nesting_without_a_500(client):
    # Signed deep nesting answers 400: tests/api/test_paypal_webhook.py.
    response = client.post("/v1/webhooks/paypal", data=DEEP,
                           content_type="application/json")
    assert response.status_code == 401


def test_a_deep_ndjson_line_is_refused_by_its_line_and_the_others_are_applied(api):
    api.setup()
    good = {"transaction_id": "T-1", "order_id": "O-1", "member": "M1", "retailer": "macys",
            "category": "apparel", "event_date": "2026-10-01", "sale_amount": "120.00",
            "commission_amount": "6.00", "currency": "USD", "status": "pending"}
    body = (json.dumps(good) + "\n" + DEEP + "\n").encode()
    response = api.upload(body, "application/x-ndjson", as_of=AS_OF)
    report = api.report(response.get_json()["id"])
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(2, "too_deep")]
    assert report["counts"]["inserted"] == 1


def test_a_key_given_twice_in_a_json_body_is_refused(api):
    response = api.client.put("/v1/retailers/macys", headers=api.h("admin"),
                              data='{"name": "Macy\'s", "name": "Evil"}',
                              content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["code"] == "duplicate_key"
    assert api.client.get("/v1/retailers/macys", headers=api.h("admin")).status_code != 200


def test_a_key_given_twice_in_a_report_record_fails_the_report(api):
    api.setup()
    body = ('[{"transaction_id": "T-1", "transaction_id": "T-2", "order_id": "O-1", '
            '"member": "M1", "retailer": "macys", "category": "apparel", '
            '"event_date": "2026-10-01", "sale_amount": "120.00", '
            '"commission_amount": "6.00", "currency": "USD", "status": "pending"}]')
    response = api.upload(body.encode(), "application/json", as_of=AS_OF)
    report = api.report(response.get_json()["id"])
    assert report["status"] == "failed"
    assert [e["code"] for e in report["errors"]] == ["duplicate_key"]
    assert api.money("M1") == ("0.00", "0.00")


def test_a_json_number_as_a_generic_amount_is_refused_by_line_and_field(api):
    api.setup()
    record = {"transaction_id": "T-1", "order_id": "O-1", "member": "M1",
              "retailer": "macys", "category": "apparel", "event_date": "2026-10-01",
              "sale_amount": "120.00", "commission_amount": 0.1, "currency": "USD",
              "status": "pending"}
    response = api.upload(json.dumps([record]).encode(), "application/json", as_of=AS_OF)
    report = api.report(response.get_json()["id"])
    assert [(e["line"], e["field"], e["code"]) for e in report["errors"]] == [
        (1, "commission_amount", "json_number")]
    assert api.money("M1") == ("0.00", "0.00")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=20))
def test_the_measured_depth_is_the_documents_nesting(value):
    def nesting(v) -> int:
        if isinstance(v, list):
            return 1 + max(map(nesting, v), default=0)
        if isinstance(v, dict):
            return 1 + max(map(nesting, v.values()), default=0)
        return 0
    assert jsonsafe.depth(json.dumps(value)) == nesting(value)


@pytest.mark.parametrize("doc", ['"[[[[["', '{"a": "]]]}}}"}', '"\\"[[["'])
def test_brackets_inside_strings_do_not_count_as_nesting(doc):
    assert jsonsafe.depth(doc) <= 1 and jsonsafe.loads(doc) is not None


def test_nan_and_infinity_are_not_numbers():
    for doc in ('{"a": NaN}', "[Infinity]", "-Infinity"):
        with pytest.raises(jsonsafe.JsonRefused):
            jsonsafe.loads(doc)


def test_put_member_with_an_empty_body_is_refused_and_creates_nothing(api):
    for content_type in ("application/json", None):
        response = api.client.put("/v1/members/M9", data=b"", content_type=content_type,
                                  headers=api.h("admin"))
        assert response.status_code == 400, content_type
        assert response.get_json()["errors"][0]["code"] == "empty_body"
    assert api.client.get("/v1/members/M9/balance", headers=api.h("operator")).status_code \
        == 404
    assert api.client.put("/v1/members/M9", json={}, headers=api.h("admin")).status_code == 200


def test_a_body_of_escaped_quotes_is_measured_in_one_pass_and_refused():
    # `"\"\"\"...` never closes a string: measured by retrying from each quote, it took
    # time quadratic in its length (this one would run for hours).
    doc = '"\\' * 500_000
    assert jsonsafe.depth(doc) == 0
    with pytest.raises(jsonsafe.JsonRefused):
        jsonsafe.loads(doc)
