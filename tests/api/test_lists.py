"""The list routes: reports, settlement runs, retailers, share rules, members and a run's
skipped members. Each answers only the caller's tenant's rows, pages by an opaque cursor
(every row once, in a stable order), filters as documented, checks the role, and
publishes a response schema in the OpenAPI document."""
from __future__ import annotations

import pytest

from tests.api.conftest import PROBLEM

LISTS = {"/v1/reports": "reports", "/v1/settlement-runs": "runs",
         "/v1/retailers": "retailers", "/v1/share-rules": "share_rules",
         "/v1/members": "members"}


def page_through(client, path: str, headers: dict, key: str, **query) -> list[dict]:
    """Every row of a list, one page of `limit` at a time, following next_cursor."""
    rows, cursor = [], None
    for _ in range(100):
        response = client.get(path, headers=headers,
                              query_string={**query, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        rows += body[key]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows
    raise AssertionError("the cursor never ended")


def names(rows: list[dict], key: str) -> list:
    return [r[key] for r in rows]


@pytest.fixture
def two(api_for):
    """Tenants A and B, each with retailers, rules, members, reports and runs of their own."""
    a = api_for().setup(retailers=("macys", "best-buy"), members=("M1", "M2", "m3", "X1"))
    b = api_for().setup(retailers=("zappos",), members=("M9",))
    assert a.rule(retailer="macys", kind="percent_of_sale", rate="8", valid_from="2026-10-01",
                  valid_to="2026-11-01", priority=5).status_code == 201
    a.ingest(a.row("A-1", "M1", status="confirmed"), as_of="2026-11-10T12:00:00+00:00")
    a.ingest(a.row("A-2", "M2", status="confirmed"), as_of="2026-11-11T12:00:00+00:00")
    b.ingest(b.row("B-1", "M9", retailer="zappos", status="confirmed"),
             as_of="2026-11-10T12:00:00+00:00")
    a.cancel(a.planned("2026-11-15")["id"])
    a.planned("2026-11-15")
    b.planned("2026-11-15")
    return a, b


def test_every_list_answers_only_the_callers_tenants_rows_numbered_per_tenant(client, two):
    a, b = two
    seen = {}
    for tenant, label in ((a, "a"), (b, "b")):
        for path, key in LISTS.items():
            seen[label, key] = page_through(client, path, tenant.h("admin"), key, limit=1)
    assert names(seen["a", "retailers"], "slug") == ["macys", "best-buy"]
    assert names(seen["b", "retailers"], "slug") == ["zappos"]
    assert names(seen["a", "members"], "external_id") == ["M1", "M2", "m3", "X1"]
    assert names(seen["b", "members"], "external_id") == ["M9"]
    assert [r["retailer"] for r in seen["a", "share_rules"]] == [None, "macys"]
    assert [r["retailer"] for r in seen["b", "share_rules"]] == [None]
    assert len(seen["a", "reports"]) == 2 and len(seen["b", "reports"]) == 1
    assert names(seen["a", "runs"], "status") == ["planned", "cancelled"]  # newest first
    assert names(seen["b", "runs"], "status") == ["planned"]
    # Each tenant numbers its own (issue 11): the ids say nothing about the other tenant.
    ids = lambda label, key: {r["id"] for r in seen[label, key]}  # noqa: E731
    for key in ("reports", "runs", "share_rules"):
        assert ids("a", key) == {1, 2} and ids("b", key) == {1}, key


def test_a_page_and_its_cursor_give_every_row_once_in_order(client, two):
    a, _ = two
    for path, key in LISTS.items():
        whole = client.get(path, headers=a.h("admin"), query_string={"limit": 1000})
        assert whole.get_json()["next_cursor"] is None
        for limit in (1, 2, 3):
            assert page_through(client, path, a.h("admin"), key, limit=limit) == \
                whole.get_json()[key], (path, limit)


def test_reports_filter_by_status_format_and_received_since(client, two):
    a, _ = two
    get = lambda **q: client.get("/v1/reports", headers=a.h("uploader"),  # noqa: E731
                                 query_string=q).get_json()["reports"]
    everything = get()
    assert [r["status"] for r in everything] == ["completed", "completed"]
    assert everything[0]["id"] > everything[1]["id"]
    assert get(status="completed") == everything and get(status="failed") == []
    assert get(format="generic") == everything and get(format="cj") == []
    assert get(since="2000-01-01T00:00:00+00:00") == everything
    assert get(since="2999-01-01T00:00:00Z") == []
    for bad in ({"status": "done"}, {"format": "csv"}, {"since": "yesterday"},
                {"since": "2026-11-01T00:00:00"}, {"limit": 0}, {"limit": 1001}):
        response = client.get("/v1/reports", headers=a.h("uploader"), query_string=bad)
        assert response.status_code == 422 and response.mimetype == PROBLEM, bad


def test_share_rules_filter_by_retailer_and_the_date_they_are_in_force(client, two):
    a, _ = two
    get = lambda **q: client.get("/v1/share-rules", headers=a.h("operator"),  # noqa: E731
                                 query_string=q)
    macys = get(retailer="macys").get_json()["share_rules"]
    assert [(r["retailer"], r["rate"], str(r["valid_from"]), r["priority"]) for r in macys] == [
        ("macys", "8", "2026-10-01", 5)]
    assert get(retailer="best-buy").get_json()["share_rules"] == []
    assert len(get(active_on="2026-10-15").get_json()["share_rules"]) == 2
    assert [r["retailer"] for r in get(active_on="2026-11-01").get_json()["share_rules"]] == [
        None]  # valid_to is exclusive
    unknown = get(retailer="zappos")  # tenant B's retailer is unknown here
    assert unknown.status_code == 422
    assert unknown.get_json()["errors"][0]["field"] == "retailer"
    assert get(active_on="someday").status_code == 422


def test_members_filter_by_external_id_prefix_exactly(client, two):
    a, _ = two
    get = lambda q: names(client.get("/v1/members", headers=a.h("operator"),  # noqa: E731
                                     query_string={"q": q}).get_json()["members"],
                          "external_id")
    assert get("M") == ["M1", "M2"]  # external ids are case-sensitive: not m3
    assert get("m") == ["m3"]
    assert get("M1") == ["M1"] and get("%") == [] and get("_1") == []


def test_runs_filter_by_status(client, two):
    a, _ = two
    get = lambda s: client.get("/v1/settlement-runs", headers=a.h("approver"),  # noqa: E731
                               query_string={"status": s})
    assert names(get("cancelled").get_json()["runs"], "status") == ["cancelled"]
    assert get("done").status_code == 422


@pytest.mark.parametrize("path", sorted(LISTS))
def test_a_cursor_the_api_did_not_give_answers_400(client, two, path):
    a, _ = two
    for bad in ("%%%", "bm90IGEgbnVtYmVy", "LTE"):  # not base64, "not a number", "-1"
        response = client.get(path, headers=a.h("admin"), query_string={"cursor": bad})
        assert response.status_code == 400, (path, bad)
        assert response.get_json()["errors"][0]["code"] == "invalid_cursor"


def test_lists_check_the_role(client, two):
    a, _ = two
    for path in LISTS:
        allowed = {"operator", "approver", "admin"} | (
            {"uploader"} if path == "/v1/reports" else set())
        for role in ("uploader", "operator", "approver", "admin"):
            status = client.get(path, headers=a.h(role)).status_code
            assert status == (200 if role in allowed else 403), (path, role)
        assert client.get(path).status_code == 401


def test_every_list_publishes_its_query_and_response_schema(client):
    spec = client.get("/v1/openapi.json").get_json()
    for path, key in {**LISTS, "/v1/settlement-runs/{run_id}/skipped": "skipped"}.items():
        get = spec["paths"][path]["get"]
        assert {"cursor", "limit"} <= {p["name"] for p in get["parameters"]
                                       if p["in"] == "query"}, path
        schema = get["responses"]["200"]["content"]["application/json"]["schema"]
        name = schema["$ref"].rsplit("/", 1)[1]
        properties = spec["components"]["schemas"][name]["properties"]
        assert {key, "next_cursor"} <= set(properties), path


def test_a_runs_skipped_members_are_listed_by_reason_a_page_at_a_time(client, api_for):
    a = api_for().setup(retailers=("macys",), members=())
    address = {"address_line1": "1 Main St", "city": "Savannah", "postal_code": "31401",
               "country": "US"}
    for member, fields in {"S1": {"payout_method": "check"},  # no mailing address
                           "S2": {"payout_method": "paypal", **address},  # no e-mail
                           "S3": {"payout_method": "paypal", **address},
                           "S4": address}.items():  # below the minimum
        assert a.put_member(member, **fields).status_code == 200
    a.ingest(*(a.row(f"T-{m}", m, sale="200.00", status="confirmed")
               for m in ("S1", "S2", "S3")), a.row("T-S4", "S4", sale="20.00", status="confirmed"),
             as_of="2026-11-10T12:00:00+00:00")
    run_id = a.planned("2026-11-15")["id"]
    path = f"/v1/settlement-runs/{run_id}/skipped"
    every = page_through(client, path, a.h("operator"), "skipped", limit=1)
    assert sorted((s["member"], s["reason"], s["amount"]) for s in every) == [
        ("S1", "no_mailing_address", "10.00"), ("S2", "missing_destination", "10.00"),
        ("S3", "missing_destination", "10.00"), ("S4", "below_minimum", "1.00")]
    by_reason = page_through(client, path, a.h("approver"), "skipped", limit=1,
                             reason="missing_destination")
    assert names(by_reason, "member") == ["S2", "S3"]
    assert client.get(path, headers=a.h("operator"),
                      query_string={"reason": "bored"}).status_code == 422
    assert client.get(path, headers=a.h("uploader")).status_code == 403
    other = api_for()
    assert client.get(path, headers=other.h("operator")).status_code == 404


def test_reports_since_compares_the_moment_whatever_its_offset(client, two, engine):
    import datetime as dt

    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from settlement.models import Report

    a, _ = two
    ids = [r["id"] for r in client.get("/v1/reports", headers=a.h("admin")).get_json()[
        "reports"]]
    utc = dt.timezone.utc
    with Session(engine) as session:
        for report_id, hour in zip(sorted(ids), (10, 12)):
            session.execute(update(Report).where(Report.tenant_id == a.tenant.id,
                                                 Report.number == report_id).values(
                created_at=dt.datetime(2026, 11, 11, hour, tzinfo=utc)))
        session.commit()
    since = lambda moment: [r["id"] for r in client.get(  # noqa: E731
        "/v1/reports", headers=a.h("admin"), query_string={"since": moment}).get_json()[
        "reports"]]
    assert since("2026-11-11T13:00:00+02:00") == [max(ids)]  # 11:00 UTC
    assert since("2026-11-11T05:00:00-05:00") == sorted(ids, reverse=True)  # 10:00 UTC
    assert since("2026-11-11T12:00:01Z") == []
