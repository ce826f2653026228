"""PUT /v1/members/{id}, POST /v1/members/import and POST /v1/share-rules: validation with
problem+json naming the field (and line), all-or-nothing imports, and what share rules pay."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import text

ROOT = Path(__file__).parents[2]
MEMBERS_CSV = ROOT / "fixtures" / "us-cashback" / "members.csv"
PROBLEM = "application/problem+json"


def members_in(engine, tenant) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM members WHERE tenant_id = :t"),
                            {"t": tenant.id}).scalar_one()


def member_row(engine, tenant, external_id: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM members WHERE tenant_id = :t "
                                "AND external_id = :e"),
                           {"t": tenant.id, "e": external_id}).mappings().first()
    return dict(row) if row else None


def rules_in(engine, tenant) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM share_rules WHERE tenant_id = :t"),
                            {"t": tenant.id}).scalar_one()


def assert_refused(response, status: int, field: str, code: str | None = None,
                   line: int | None = None):
    assert response.status_code == status, response.get_json()
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["title"]
    errors = body["errors"]
    assert any(e["field"] == field and (code is None or e["code"] == code)
               and e["line"] == line for e in errors), errors
    assert all(e["message"] for e in errors)
    return body


def import_members(api, body: bytes, content_type: str = "text/csv"):
    return api.client.post("/v1/members/import", data=body, content_type=content_type,
                           headers=api.h("admin"))


# ---------------------------------------------------------------------------------------
# PUT /v1/members/{external_id}


def test_put_member_creates_then_updates(api, engine):
    first = api.put_member("M1", name="Ann Lee", email="ann@example.com",
                           joined_at="2026-01-31", payout_method="paypal",
                           paypal_email="ann.pp@example.com")
    assert first.status_code == 200
    assert first.get_json() == {"external_id": "M1", "name": "Ann Lee",
                                "email": "ann@example.com", "joined_at": "2026-01-31",
                                "referred_by": None, "payout_method": "paypal",
                                "created": True}
    second = api.put_member("M1", name="Ann Lee-Smith", email="ann@example.com",
                            payout_method="check")
    assert second.status_code == 200
    answer = second.get_json()
    assert answer["created"] is False
    assert (answer["name"], answer["payout_method"]) == ("Ann Lee-Smith", "check")
    assert members_in(engine, api.tenant) == 1
    assert member_row(engine, api.tenant, "M1")["name"] == "Ann Lee-Smith"
    # The same body again changes nothing and still is not a creation.
    third = api.put_member("M1", name="Ann Lee-Smith", email="ann@example.com",
                           payout_method="check")
    assert third.get_json()["created"] is False
    assert api.balance("M1")["pending"] == "0.00"


@pytest.mark.parametrize("fields, field, code", [
    ({"email": "not-an-address"}, "email", "invalid_email"),
    ({"paypal_email": "pp@nowhere"}, "paypal_email", "invalid_email"),
    ({"payout_method": "venmo"}, "payout_method", None),
    ({"joined_at": "2030-01-01"}, "joined_at", "future_date"),
    ({"joined_at": "31/01/2026"}, "joined_at", "invalid_date"),
    ({"referred_by": "M-SELF"}, "referred_by", "self_referral"),
    ({"country": "USA"}, "country", "too_long"),
    ({"bilt_tier": "diamond"}, "bilt_tier", "unknown_tier"),
    ({"nickname": "Annie"}, "nickname", None),
], ids=["email", "paypal_email", "payout_method", "future_joined_at", "bad_joined_at",
        "self_referral", "country", "bilt_tier", "unknown_field"])
def test_a_member_with_a_bad_field_answers_422_naming_the_field_and_is_not_stored(
        api, engine, fields, field, code):
    response = api.client.put("/v1/members/M-SELF", json={"name": "Self", **fields},
                              headers=api.h("admin"))
    assert_refused(response, 422, field, code)
    assert members_in(engine, api.tenant) == 0


def test_a_bad_field_does_not_change_a_known_member(api, engine):
    assert api.put_member("M1", name="Ann", email="ann@example.com").status_code == 200
    response = api.put_member("M1", name="Changed", email="broken")
    assert_refused(response, 422, "email", "invalid_email")
    row = member_row(engine, api.tenant, "M1")
    assert (row["name"], row["email"]) == ("Ann", "ann@example.com")


def test_a_member_id_with_a_space_is_refused_naming_external_id(api, engine):
    response = api.client.put("/v1/members/has%20space", json={"name": "x"},
                              headers=api.h("admin"))
    assert_refused(response, 422, "external_id", "invalid_id")
    assert members_in(engine, api.tenant) == 0


# ---------------------------------------------------------------------------------------
# POST /v1/members/import


def test_the_members_fixture_imports_3000_members(api, engine):
    response = import_members(api, MEMBERS_CSV.read_bytes())
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"created": 3000, "updated": 0, "unchanged": 0}
    assert members_in(engine, api.tenant) == 3000
    row = member_row(engine, api.tenant, "RR000001")
    assert (row["name"], row["payout_method"], row["amex_card"]) == (
        "George Moore", "amex_mr", "platinum")
    assert row["joined_at"] == dt.date(2025, 1, 1) or str(row["joined_at"]) == "2025-01-01"
    assert api.balance("RR003000")["available"] == "0.00"


def test_an_import_counts_created_updated_and_unchanged(api):
    first = import_members(api, b"external_id,name\nA1,Ann\nA2,Bob\n")
    assert first.get_json() == {"created": 2, "updated": 0, "unchanged": 0}
    second = import_members(api, b"external_id,name\nA1,Ann\nA2,Robert\nA3,Cy\n")
    assert second.get_json() == {"created": 1, "updated": 1, "unchanged": 1}
    ndjson = b'{"external_id": "A4", "name": "Di"}\n\n{"external_id": "A1", "name": "Ann"}\n'
    third = import_members(api, ndjson, "application/x-ndjson")
    assert third.status_code == 200
    assert third.get_json() == {"created": 1, "updated": 0, "unchanged": 1}


def test_an_import_with_one_bad_line_refuses_the_whole_file_with_its_line_number(api, engine):
    lines = MEMBERS_CSV.read_bytes().decode("utf-8").splitlines()
    # Line 1500 of the file (the header is line 1).
    lines[1499] = lines[1499].replace("@", " at ", 1)
    response = import_members(api, ("\n".join(lines) + "\n").encode())
    body = assert_refused(response, 422, "email", "invalid_email", line=1500)
    assert len(body["errors"]) == 1
    assert members_in(engine, api.tenant) == 0


def test_an_ndjson_import_with_one_bad_line_refuses_the_whole_file(api, engine):
    body = b"\n".join([json.dumps({"external_id": "A1", "name": "Ann"}).encode(),
                       json.dumps({"external_id": "A2", "payout_method": "venmo"}).encode(),
                       b"{not json",
                       json.dumps({"external_id": "A4"}).encode()]) + b"\n"
    response = import_members(api, body, "application/x-ndjson")
    problem = assert_refused(response, 422, "payout_method", "unknown_method", line=2)
    assert [(e["line"], e["code"]) for e in problem["errors"]] == [
        (2, "unknown_method"), (3, "invalid_json")]
    assert members_in(engine, api.tenant) == 0


def test_an_import_naming_a_member_twice_is_refused_with_the_line(api, engine):
    response = import_members(api, b"external_id,name\nA1,Ann\nA2,Bob\nA1,Ann again\n")
    assert_refused(response, 422, "external_id", "duplicate_member", line=4)
    assert members_in(engine, api.tenant) == 0


def test_an_import_with_an_unknown_column_is_refused_naming_it(api, engine):
    response = import_members(api, b"external_id,name,shoe_size\nA1,Ann,38\n")
    assert_refused(response, 422, "shoe_size", "invalid_header", line=1)
    assert members_in(engine, api.tenant) == 0


def test_an_import_in_another_media_type_answers_415(api):
    response = import_members(api, b"<members/>", "application/xml")
    assert response.status_code == 415 and response.mimetype == PROBLEM


def test_an_import_attaches_lines_that_arrived_before_the_members(isolated_api_for):
    api = isolated_api_for()
    api.setup(members=())
    report = api.ingest(api.row("T-1", "RR000001"), api.row("T-2", "RR000002",
                                                           status="confirmed"))
    assert report["counts"]["unattributed"] == 2
    assert import_members(api, MEMBERS_CSV.read_bytes()).status_code == 200
    assert api.money("RR000001") == ("6.00", "0.00")
    assert api.money("RR000002") == ("0.00", "6.00")


def test_an_import_updates_only_the_columns_it_has(api, engine):
    assert import_members(api, b"external_id,name,email\nA1,Ann,ann@example.com\n"
                          ).status_code == 200
    response = import_members(api, b"external_id,name\nA1,Ann Lee\n")
    assert response.get_json() == {"created": 0, "updated": 1, "unchanged": 0}
    row = member_row(engine, api.tenant, "A1")
    assert (row["name"], row["email"]) == ("Ann Lee", "ann@example.com")


# ---------------------------------------------------------------------------------------
# POST /v1/share-rules


def test_a_valid_share_rule_answers_201_with_its_terms(api):
    assert api.put_retailer("macys").status_code == 200
    response = api.rule(retailer="macys", category="Apparel", kind="percent_of_sale",
                        rate="6.5", valid_from="2026-11-01", valid_to="2026-11-09",
                        priority=10)
    assert response.status_code == 201
    answer = response.get_json()
    assert isinstance(answer["id"], int)
    assert {k: v for k, v in answer.items() if k != "id"} == {
        "retailer": "macys", "category": "apparel", "kind": "percent_of_sale", "rate": "6.5",
        "amount": None, "valid_from": "2026-11-01", "valid_to": "2026-11-09", "priority": 10,
        "category_only": False}
    fixed = api.rule(kind="fixed", amount="10.00")
    assert fixed.status_code == 201
    assert (fixed.get_json()["amount"], fixed.get_json()["rate"]) == ("10.00", None)


@pytest.mark.parametrize("body, field, code", [
    ({"kind": "percent_of_sale", "rate": "abc"}, "rate", "invalid_rate"),
    ({"kind": "percent_of_sale", "rate": "-1"}, "rate", "out_of_range"),
    ({"kind": "percent_of_sale", "rate": "1000.01"}, "rate", "out_of_range"),
    ({"kind": "percent_of_sale"}, "rate", "missing_field"),
    ({"kind": "percent_of_commission", "rate": "5", "amount": "1.00"}, "rate",
     "missing_field"),
    ({"kind": "fixed"}, "amount", "missing_field"),
    ({"kind": "fixed", "rate": "5"}, "amount", "missing_field"),
    ({"kind": "fixed", "amount": "-1.00"}, "amount", "negative"),
    ({"kind": "fixed", "amount": "1.234"}, "amount", "too_many_decimals"),
    ({"kind": "fixed", "amount": "1e2"}, "amount", "invalid_amount"),
    ({"kind": "fixed", "amount": "1,000.00"}, "amount", "invalid_amount"),
    ({"kind": "cash", "rate": "5"}, "kind", None),
    ({"kind": "percent_of_sale", "rate": "5", "valid_from": "2026-02-01",
      "valid_to": "2026-02-01"}, "valid_to", "invalid_range"),
    ({"kind": "percent_of_sale", "rate": "5", "retailer": "nowhere"}, "retailer",
     "unknown_retailer"),
], ids=["rate-not-a-number", "rate-negative", "rate-over-1000", "percent-without-rate",
        "percent-with-amount", "fixed-without-amount", "fixed-with-rate", "fixed-negative",
        "fixed-too-many-decimals", "fixed-exponent", "fixed-thousands", "unknown-kind",
        "empty-validity", "unknown-retailer"])
def test_a_bad_share_rule_answers_422_naming_the_field(api, engine, body, field, code):
    assert_refused(api.rule(**body), 422, field, code)
    assert rules_in(engine, api.tenant) == 0


def test_a_fixed_amount_in_yen_has_no_decimals(api_for, engine):
    api = api_for("JPY")
    assert_refused(api.rule(kind="fixed", amount="10.5"), 422, "amount", "too_many_decimals")
    response = api.rule(kind="fixed", amount="100")
    assert response.status_code == 201 and response.get_json()["amount"] == "100"


def test_an_ambiguous_duplicate_rule_answers_409(api, engine):
    assert api.put_retailer("macys").status_code == 200
    first = api.rule(retailer="macys", kind="percent_of_sale", rate="5")
    assert first.status_code == 201
    clash = api.rule(retailer="macys", kind="percent_of_commission", rate="50")
    body = assert_refused(clash, 409, "priority", "ambiguous_rule")
    assert str(first.get_json()["id"]) in body["detail"]
    # Overlapping dates at the same priority clash too.
    dated = api.rule(retailer="macys", kind="percent_of_sale", rate="7",
                     valid_from="2026-11-01", valid_to="2026-12-01")
    assert_refused(dated, 409, "priority", "ambiguous_rule")
    # Another priority, or another scope, is no tie.
    assert api.rule(retailer="macys", kind="percent_of_sale", rate="12", priority=10,
                    valid_from="2026-11-01", valid_to="2026-11-09").status_code == 201
    assert api.rule(retailer="macys", category="shoes", kind="percent_of_sale",
                    rate="8").status_code == 201
    assert api.rule(kind="percent_of_commission", rate="50").status_code == 201
    # Two promotions of one priority on dates that do not overlap are fine.
    assert api.rule(retailer="macys", kind="percent_of_sale", rate="12", priority=10,
                    valid_from="2026-11-09", valid_to="2026-11-20").status_code == 201
    assert rules_in(engine, api.tenant) == 5


@pytest.mark.parametrize("body", [
    {"category": "fashion"},
    {"retailer": "amazon"},
    {},
], ids=["without-retailer", "without-category", "without-both"])
def test_a_category_only_rule_without_retailer_and_category_answers_422(api, engine, body):
    assert api.put_retailer("amazon").status_code == 200
    response = api.rule(kind="percent_of_sale", rate="1", category_only=True, **body)
    assert_refused(response, 422, "category_only", "invalid_scope")
    assert rules_in(engine, api.tenant) == 0


def test_a_category_limited_offer_pays_nothing_outside_its_category(api):
    assert api.put_retailer("amazon", "Amazon", "marketplace").status_code == 200
    assert api.put_retailer("macys").status_code == 200
    # A tenant-wide default and Amazon's fashion-only offer (as in the us-cashback fixtures).
    assert api.rule(kind="percent_of_commission", rate="50").status_code == 201
    assert api.rule(retailer="amazon", category="Fashion", kind="percent_of_sale", rate="1",
                    category_only=True).status_code == 201
    for member in ("ELEC", "FASH", "NOCAT", "OTHER"):
        assert api.put_member(member).status_code == 200
    report = api.ingest(
        api.row("T-1", "ELEC", "amazon", category="electronics", sale="300.00",
                commission="6.00", status="confirmed"),
        api.row("T-2", "FASH", "amazon", category="FASHION", sale="122.92",
                commission="4.92", status="confirmed"),
        api.row("T-3", "NOCAT", "amazon", category="", sale="50.00", commission="2.00",
                status="confirmed"),
        api.row("T-4", "OTHER", "macys", category="electronics", sale="300.00",
                commission="6.00", status="confirmed"),
    )
    assert report["counts"]["inserted"] == 4 and report["counts"]["rejected"] == 0
    assert api.money("ELEC") == ("0.00", "0.00")
    assert api.money("FASH") == ("0.00", "1.23")    # 1% of 122.92, half-even
    assert api.money("NOCAT") == ("0.00", "0.00")
    assert api.money("OTHER") == ("0.00", "3.00")   # the default elsewhere


def test_a_rule_created_later_does_not_change_the_share_of_a_line_already_ingested(api):
    api.setup(retailers=("macys",), members=("M1",), rate="5")
    api.ingest(api.row("T-1"), as_of="2026-11-01T00:00:00Z")
    assert api.rule(kind="percent_of_sale", rate="10", priority=5).status_code == 201
    api.ingest(api.row("T-1", status="confirmed"), api.row("T-2"),
               as_of="2026-11-02T00:00:00Z")
    # T-1 keeps the 5% it was ingested with; the new T-2 gets the 10% promotion.
    assert api.money("M1") == ("12.00", "6.00")


def test_a_promotion_wins_only_on_its_dates(api):
    api.setup(retailers=("macys",), members=("M1", "M2"), rate=None)
    assert api.rule(retailer="macys", kind="percent_of_sale", rate="6").status_code == 201
    assert api.rule(retailer="macys", kind="percent_of_sale", rate="12", priority=10,
                    valid_from="2026-11-01", valid_to="2026-11-09").status_code == 201
    api.ingest(api.row("T-1", "M1", event_date="2026-11-08", sale="100.00"),
               api.row("T-2", "M2", event_date="2026-11-09", sale="100.00"))
    assert api.money("M1") == ("12.00", "0.00")
    assert api.money("M2") == ("6.00", "0.00")
