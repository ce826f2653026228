"""POST /v1/reports and GET /v1/reports/{id}: the upload contract of DESIGN.md, end to end
through the API (jobs run in-process: the app is built without Redis), with the money
checked through GET /v1/members/{id}/balance."""
from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from api import create_app
from settlement.config import Settings

ROOT = Path(__file__).parents[2]
HOSTILE = ROOT / "tests" / "hostile"
REPORTS = ROOT / "fixtures" / "reports"
PROBLEM = "application/problem+json"
STATUSES = {"queued", "processing", "completed", "failed"}
COUNTS = {"lines", "inserted", "updated", "unchanged", "stale", "rejected"}


def records(*rows: str) -> list[dict]:
    """Generic CSV rows as the JSON objects of the same report."""
    header = ("transaction_id,order_id,member,retailer,category,event_date,sale_amount,"
              "commission_amount,currency,status").split(",")
    return [dict(zip(header, r.split(","))) for r in rows]


def error_triples(report: dict) -> list[tuple]:
    return [(e["line"], e["field"], e["code"]) for e in report["errors"]]


def report_rows(engine, tenant) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM reports WHERE tenant_id = :t"),
                            {"t": tenant.id}).scalar_one()


# ---------------------------------------------------------------------------------------
# Media types


def _bodies(api) -> dict:
    rows = (api.row("T-1", "M1"), api.row("T-2", "M1", sale="40.00", commission="2.00",
                                         status="confirmed"))
    csv = api.csv(*rows)
    objects = records(*rows)
    return {
        "csv": {"data": csv, "content_type": "text/csv"},
        "json": {"data": json.dumps(objects).encode(), "content_type": "application/json"},
        "ndjson": {"data": "".join(json.dumps(o) + "\n" for o in objects).encode(),
                   "content_type": "application/x-ndjson"},
        "multipart": {"data": {"file": (io.BytesIO(csv), "report.csv", "text/csv")},
                      "content_type": "multipart/form-data"},
        "multipart-json": {"data": {"file": (io.BytesIO(json.dumps(objects).encode()),
                                             "report.json")},
                           "content_type": "multipart/form-data"},
    }


@pytest.mark.parametrize("media", ["csv", "json", "ndjson", "multipart", "multipart-json"])
def test_a_report_in_any_accepted_media_answers_202_with_id_and_status_and_is_applied(
        api, media):
    api.setup(members=("M1",))
    body = _bodies(api)[media]
    response = api.client.post("/v1/reports", headers=api.h("uploader"), **body)
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    assert isinstance(answer["id"], int) and answer["status"] in STATUSES
    assert answer["duplicate"] is False
    report = api.report(answer["id"])
    assert report["status"] == "completed" and report["format"] == "generic"
    assert {k: report["counts"][k] for k in COUNTS} == {
        "lines": 2, "inserted": 2, "updated": 0, "unchanged": 0, "stale": 0, "rejected": 0}
    assert report["errors"] == []
    # 5% of 120.00 pending, 5% of 40.00 confirmed.
    assert api.balance("M1") == {"currency": "USD", "pending": "6.00", "available": "2.00",
                                 "reserved": "0.00", "paid": "0.00"}


def test_a_multipart_upload_without_field_file_is_refused_naming_the_field(api, engine):
    response = api.client.post("/v1/reports", data={"report": (io.BytesIO(b"x"), "r.csv")},
                               content_type="multipart/form-data", headers=api.h("uploader"))
    assert response.status_code == 400 and response.mimetype == PROBLEM
    assert [e["field"] for e in response.get_json()["errors"]] == ["file"]
    assert report_rows(engine, api.tenant) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml",
                                          "application/octet-stream", "image/png"])
def test_an_unsupported_content_type_answers_415_and_stores_nothing(api, engine, content_type):
    api.setup()
    response = api.upload(api.csv(api.row("T-1")), content_type=content_type)
    assert response.status_code == 415 and response.mimetype == PROBLEM
    assert response.get_json()["status"] == 415
    assert report_rows(engine, api.tenant) == 0


def test_an_empty_body_is_refused_as_a_problem(api, engine):
    response = api.upload(b"")
    assert response.status_code == 400 and response.mimetype == PROBLEM
    assert [e["code"] for e in response.get_json()["errors"]] == ["empty_body"]
    assert report_rows(engine, api.tenant) == 0


# ---------------------------------------------------------------------------------------
# Counts and errors


def test_report_status_shows_counts_and_line_level_errors(api):
    api.setup(members=("M1", "M2"))
    report = api.ingest(
        api.row("T-1", "M1"),
        api.row("T-2", "M2", sale="1e3"),                 # line 3: bad amount
        api.row("T-3", "M2", retailer="no-such-shop"),    # line 4: unknown retailer
        api.row("T-4", "M2", status="approved"),          # line 5: unknown status
        api.row("T-5", "M1"), api.row("T-5", "M2"),       # lines 6-7: same id twice
    )
    assert report["status"] == "completed"
    assert {k: report["counts"][k] for k in COUNTS} == {
        "lines": 6, "inserted": 1, "updated": 0, "unchanged": 0, "stale": 0, "rejected": 5}
    assert sorted(error_triples(report)) == [
        (3, "sale_amount", "invalid_amount"),
        (4, "retailer", "unknown_retailer"),
        (5, "status", "unknown_status"),
        (6, "transaction_id", "duplicate_transaction"),
        (7, "transaction_id", "duplicate_transaction"),
    ]
    for error in report["errors"]:
        assert set(error) == {"line", "field", "code", "message"} and error["message"]
    assert api.money("M1") == ("6.00", "0.00")
    assert api.money("M2") == ("0.00", "0.00")


def test_the_same_file_again_answers_200_with_the_original_id_and_changes_nothing(api, engine):
    api.setup(members=("M1",))
    body = api.csv(api.row("T-1"), api.row("T-2", status="confirmed"))
    first = api.upload(body)
    assert first.status_code == 202
    before = api.balance("M1")
    again = api.upload(body)
    assert again.status_code == 200
    answer = again.get_json()
    assert answer["id"] == first.get_json()["id"] and answer["duplicate"] is True
    # Even with another as-of time, the same bytes are the same report.
    third = api.upload(body, as_of="2026-11-20T00:00:00Z")
    assert third.status_code == 200 and third.get_json()["id"] == answer["id"]
    assert api.balance("M1") == before == {"currency": "USD", "pending": "6.00",
                                           "available": "6.00", "reserved": "0.00",
                                           "paid": "0.00"}
    assert report_rows(engine, api.tenant) == 1


# ---------------------------------------------------------------------------------------
# The commission lifecycle through reports


def test_a_confirmation_moves_pending_to_available(api):
    api.setup(members=("M1",))
    first = api.ingest(api.row("T-1"), as_of="2026-11-01T00:00:00Z")
    assert first["counts"]["inserted"] == 1
    assert api.money("M1") == ("6.00", "0.00")
    second = api.ingest(api.row("T-1", status="confirmed"), as_of="2026-11-10T00:00:00Z")
    assert {k: second["counts"][k] for k in COUNTS} == {
        "lines": 1, "inserted": 0, "updated": 1, "unchanged": 0, "stale": 0, "rejected": 0}
    assert api.money("M1") == ("0.00", "6.00")


def test_a_reversal_after_confirmation_lowers_available(api):
    api.setup(members=("M1",))
    api.ingest(api.row("T-1", status="confirmed"),
               api.row("T-2", sale="40.00", commission="2.00", status="confirmed"),
               as_of="2026-11-01T00:00:00Z")
    assert api.money("M1") == ("0.00", "8.00")
    report = api.ingest(api.row("T-2", sale="40.00", commission="2.00", status="reversed"),
                        as_of="2026-11-10T00:00:00Z")
    assert report["counts"]["updated"] == 1
    assert api.money("M1") == ("0.00", "6.00")


def test_a_report_older_than_the_last_applied_one_makes_its_lines_stale(api):
    api.setup(members=("M1",))
    api.ingest(api.row("T-1"), as_of="2026-11-01T00:00:00Z")
    api.ingest(api.row("T-1", status="confirmed"), as_of="2026-11-10T00:00:00Z")
    old = api.ingest(api.row("T-1", status="reversed"), as_of="2026-11-05T00:00:00+00:00")
    assert {k: old["counts"][k] for k in COUNTS} == {
        "lines": 1, "inserted": 0, "updated": 0, "unchanged": 0, "stale": 1, "rejected": 0}
    assert old["status"] == "completed"
    assert api.money("M1") == ("0.00", "6.00")


def test_a_report_repeating_known_lines_counts_them_unchanged(api):
    api.setup(members=("M1",))
    api.ingest(api.row("T-1"), as_of="2026-11-01T00:00:00Z")
    again = api.ingest(api.row("T-1"), api.row("T-2"), as_of="2026-11-02T00:00:00Z")
    assert {k: again["counts"][k] for k in COUNTS} == {
        "lines": 2, "inserted": 1, "updated": 0, "unchanged": 1, "stale": 0, "rejected": 0}
    assert api.money("M1") == ("12.00", "0.00")


def test_lines_for_an_unknown_member_are_unattributed_until_the_member_is_created(
        isolated_api_for):
    api = isolated_api_for()
    client = api.client
    api.setup(members=("M1",))
    report = api.ingest(api.row("T-1", "M1"), api.row("T-2", "NEW-1"),
                        api.row("T-3", "NEW-1", sale="40.00", commission="2.00",
                                status="confirmed"))
    assert report["counts"]["inserted"] == 3 and report["counts"]["unattributed"] == 2
    unknown = client.get("/v1/members/NEW-1/balance", headers=api.h("operator"))
    assert unknown.status_code == 404 and unknown.mimetype == PROBLEM
    created = api.put_member("NEW-1", name="New member")
    assert created.status_code == 200 and created.get_json()["created"] is True
    assert api.money("NEW-1") == ("6.00", "2.00")
    assert api.money("M1") == ("6.00", "0.00")
    # Attaching is done once: updating the member moves nothing again.
    assert api.put_member("NEW-1", name="Renamed").get_json()["created"] is False
    assert api.money("NEW-1") == ("6.00", "2.00")


# ---------------------------------------------------------------------------------------
# The upload limit


def _small_client(db_url):
    app = create_app(Settings(database_url=db_url, redis_url=None, max_upload_bytes=1000))
    return app.test_client()


def test_a_body_over_the_upload_limit_answers_413_and_stores_nothing(db_url, make_tenant,
                                                                     engine):
    client = _small_client(db_url)
    tenant = make_tenant()
    header = tenant.auth("uploader")
    rows = [f"T-{i},O-{i},M1,macys,apparel,2026-10-01,120.00,6.00,USD,pending"
            for i in range(30)]
    big = ("transaction_id,order_id,member,retailer,category,event_date,sale_amount,"
           "commission_amount,currency,status\n" + "\n".join(rows) + "\n").encode()
    assert len(big) > 1000
    response = client.post("/v1/reports", data=big, content_type="text/csv", headers=header)
    assert response.status_code == 413 and response.mimetype == PROBLEM
    assert response.get_json()["status"] == 413
    # Without a Content-Length the limit holds while the body streams in.
    streamed = client.post("/v1/reports", input_stream=io.BytesIO(big),
                           content_type="text/csv", headers=header)
    assert streamed.status_code == 413 and streamed.mimetype == PROBLEM
    multipart = client.post("/v1/reports", data={"file": (io.BytesIO(big), "r.csv", "text/csv")},
                            content_type="multipart/form-data", headers=header)
    assert multipart.status_code == 413
    assert report_rows(engine, tenant) == 0
    # A body within the limit is accepted.
    small = big[:big.index(b"\n", 300) + 1]
    assert client.post("/v1/reports", data=small, content_type="text/csv",
                       headers=header).status_code == 202


# ---------------------------------------------------------------------------------------
# The hostile corpus, through the API

# The corpus's expected errors live beside the corpus (one table for both suites).
from tests.formats.test_hostile_generic import FILE_CASES, LINE_CASES  # noqa: E402

HOSTILE_MEMBERS = ("RR000101", "RR000102", "RR000103")


def hostile(name: str) -> bytes:
    data = (HOSTILE / name).read_bytes()
    return data.replace(b"@@HUGE@@", b"x" * (1024 * 1024))


def test_the_corpus_cases_name_every_hostile_file():
    assert {p.name for p in HOSTILE.glob("*.csv")} == set(LINE_CASES) | set(FILE_CASES)


# The corpus was produced on 2026-11-24 (tests/conftest.py TODAY): future_date.csv's
# 2026-11-25 is in the future only as of then.
HOSTILE_AS_OF = "2026-11-24T00:00:00Z"


def _upload_hostile(api, name):
    api.setup(members=HOSTILE_MEMBERS)
    response = api.upload(hostile(name), as_of=HOSTILE_AS_OF)
    if response.status_code >= 400:  # refused at the door: a problem naming line and field
        assert response.mimetype == PROBLEM
        return None, response.get_json()
    assert response.status_code == 202
    return api.report(response.get_json()["id"]), None


@pytest.mark.parametrize("name", sorted(LINE_CASES))
def test_a_hostile_line_is_reported_by_line_and_field_and_the_good_lines_are_applied(api, name):
    report, problem = _upload_hostile(api, name)
    expected = LINE_CASES[name]
    assert problem is None
    assert report["status"] == "completed"
    assert error_triples(report) == ([expected] if expected else [])
    assert all(e["message"] for e in report["errors"])
    assert report["counts"]["inserted"] == 2
    assert report["counts"]["rejected"] == (1 if expected else 0)
    # T-1001 (100.00, pending) and T-1003 (250.00, confirmed) at 5% of sale.
    assert api.money("RR000101") == ("5.00", "0.00")
    assert api.money("RR000102") == ("0.00", "0.00")
    assert api.money("RR000103") == ("0.00", "12.50")


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_a_hostile_header_fails_the_report_naming_line_and_field_and_applies_nothing(api, name):
    report, problem = _upload_hostile(api, name)
    errors = error_triples(report) if report else [
        (e["line"], e["field"], e["code"]) for e in problem["errors"]]
    assert errors[0] == FILE_CASES[name]
    if report:
        assert report["status"] == "failed"
        assert report["counts"]["inserted"] == 0
    for member in HOSTILE_MEMBERS:
        assert api.money(member) == ("0.00", "0.00")


@pytest.mark.parametrize("name", sorted(n for n, case in LINE_CASES.items() if case))
def test_in_whole_mode_one_hostile_line_fails_the_report_and_applies_nothing(api_for, name):
    api = api_for(report_errors="whole")
    report, problem = _upload_hostile(api, name)
    assert problem is None
    assert report["status"] == "failed"
    assert error_triples(report) == [LINE_CASES[name]]
    assert report["counts"]["inserted"] == 0
    for member in HOSTILE_MEMBERS:
        assert api.money(member) == ("0.00", "0.00")


def test_in_whole_mode_a_clean_report_is_applied(api_for):
    api = api_for(report_errors="whole")
    report, _ = _upload_hostile(api, "bom.csv")
    assert report["status"] == "completed" and report["counts"]["inserted"] == 2
    assert api.money("RR000103") == ("0.00", "12.50")


def test_in_whole_mode_an_unknown_retailer_fails_the_report(api_for):
    api = api_for(report_errors="whole")
    api.setup(members=("M1",))
    report = api.ingest(api.row("T-1"), api.row("T-2", retailer="no-such-shop"))
    assert report["status"] == "failed"
    assert error_triples(report) == [(3, "retailer", "unknown_retailer")]
    assert api.money("M1") == ("0.00", "0.00")


# ---------------------------------------------------------------------------------------
# Real network exports

# format -> (tenant fixtures, file, content type, {member: (pending, available)} at 50% of
# commission, rounded half-even per line, and how many lines name those members).
NETWORKS = {
    "cj": ("us-cashback", "us-cashback/cj_commissions.json", "application/json",
           {"RR000017": ("0.00", "3.85"),      # closed 5.20 + locked 2.50
            "RR001204": ("0.00", "3.00"),      # locked 8.99, then a -2.99 correction
            "RR000455": ("34.66", "18.61")},   # extended 69.32 + closed 37.22
           6),
    "impact": ("us-cashback", "us-cashback/impact_actions.json", "application/json",
               {"RR000121": ("1.83", "2.15"),  # PENDING 3.66 + APPROVED 4.30
                "RR002450": ("0.00", "0.00"),  # REVERSED
                "RR000640": ("1.35", "0.00")},  # PENDING 2.70
               4),
    "awin": ("us-cashback", "us-cashback/awin_transactions.json", "application/json",
             {"RR000562": ("0.00", "12.24"),   # approved 24.48
              "RR002016": ("0.00", "0.00"),    # declined
              "RR000829": ("20.92", "0.00")},  # pending 41.83 -> 20.915 -> 20.92
             3),
    "rakuten": ("jp-points", "jp-points/rakuten_orders.csv", "text/csv",
                {"HP000012": ("0", "180"),     # locked 159 + 219 - 20 -> 80 + 110 - 10
                 "HP000701": ("160", "0"),     # unlocked 319 -> 159.5 -> 160
                 "HP000219": ("24", "0")},     # unlocked 29 + 21 -> 14 + 10
                6),
}


@pytest.mark.parametrize("fmt", sorted(NETWORKS))
def test_a_network_export_uploads_and_completes_with_no_rejected_line(
        api_for, fixture_retailers, fmt):
    tenant_dir, path, content_type, members, known_lines = NETWORKS[fmt]
    api = api_for("JPY" if tenant_dir == "jp-points" else "USD")
    for retailer in fixture_retailers(tenant_dir):
        response = api.put_retailer(retailer["slug"], retailer["name"], retailer["category"],
                                    retailer["network_ids"])
        assert response.status_code == 200, response.get_json()
    assert api.rule(kind="percent_of_commission", rate="50").status_code == 201
    for member in members:
        assert api.put_member(member).status_code == 200
    response = api.upload((REPORTS / path).read_bytes(), content_type=content_type, format=fmt)
    assert response.status_code == 202, response.get_json()
    report = api.report(response.get_json()["id"])
    assert report["format"] == fmt and report["status"] == "completed"
    assert report["errors"] == []
    counts = report["counts"]
    assert counts["rejected"] == 0 and counts["lines"] > 0
    assert counts["inserted"] == counts["lines"]
    assert counts["unattributed"] == counts["lines"] - known_lines
    for member, money in members.items():
        assert api.money(member) == money, member


# ---------------------------------------------------------------------------------------
# The statement, and the as-of time


def test_the_statement_lists_the_members_entries_and_commissions(api):
    api.setup(members=("M1",))
    report = api.ingest(api.row("T-1"), api.row("T-2", sale="40.00", commission="2.00",
                                                 status="confirmed"))
    response = api.client.get("/v1/members/M1/statement", headers=api.h("operator"))
    assert response.status_code == 200, response.get_data(as_text=True)
    statement = response.get_json()
    assert statement["currency"] == "USD"
    assert statement["balance"]["pending"] == "6.00"
    assert statement["balance"]["available"] == "2.00"
    assert len(statement["entries"]) == 1
    entry = statement["entries"][0]
    assert entry["kind"] == "report" and entry["changes"] == {"pending": "6.00",
                                                             "available": "2.00"}
    assert entry["created_at"]
    assert sorted((c["transaction_id"], c["status"], c["cash_back"], c["report_id"])
                  for c in statement["commissions"]) == [
        ("T-1", "pending", "6.00", report["id"]), ("T-2", "confirmed", "2.00", report["id"])]


def test_a_future_as_of_neither_admits_future_dated_lines_nor_freezes_commissions(api):
    api.setup(members=("M1",))
    now = dt.datetime.now(dt.timezone.utc)
    next_week = (now + dt.timedelta(days=7)).date().isoformat()
    response = api.upload(
        api.csv(api.row("T-1", event_date=next_week), api.row("T-2")),
        as_of=(now + dt.timedelta(days=365)).isoformat())
    if response.status_code in (400, 422):  # refused at the door, naming as_of: fine
        assert response.mimetype == PROBLEM
        assert [e["field"] for e in response.get_json()["errors"]] == ["as_of"]
        return
    report = api.report(response.get_json()["id"])
    assert (2, "event_date", "future_date") in error_triples(report)
    # A report produced now, confirming T-2, is applied, not stale.
    later = api.ingest(api.row("T-2", status="confirmed"))
    assert later["counts"]["updated"] == 1 and later["counts"]["stale"] == 0
    assert api.money("M1") == ("0.00", "6.00")


def test_a_report_is_applied_on_a_connection_that_already_attached_lines(pg_url):
    import uuid

    from sqlalchemy.orm import Session

    from settlement.access.service import create_key
    from settlement.db import engine_for
    from settlement.tenants.policy import TenantPolicy
    from settlement.tenants.service import apply_policy

    slug = f"t-{uuid.uuid4().hex[:10]}"
    with Session(engine_for(pg_url)) as session:
        tenant, _ = apply_policy(session, TenantPolicy.model_validate({
            "slug": slug, "name": slug, "currency": "USD",
            "payouts": {"dates": ["11-15"], "minimum": "5.01"}}))
        keys = {role: create_key(session, tenant.id, role) for role in ("uploader", "admin")}
        session.commit()
    uploader = {"Authorization": f"Bearer {keys['uploader']}"}
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    line = "{t},O-{t},X1,macys,apparel,2026-10-01,120.00,6.00,USD,pending"
    header = ("transaction_id,order_id,member,retailer,category,event_date,sale_amount,"
              "commission_amount,currency,status\n")
    shared = create_app(Settings(database_url=pg_url, redis_url=None)).test_client()
    assert shared.put("/v1/retailers/macys", json={"name": "M"}, headers=admin).status_code == 200
    assert shared.post("/v1/share-rules", json={"kind": "percent_of_sale", "rate": "5"},
                       headers=admin).status_code == 201
    first = shared.post("/v1/reports", data=(header + line.format(t="T-1") + "\n").encode(),
                        content_type="text/csv", headers=uploader)
    assert first.get_json()["counts"]["unattributed"] == 1
    # A pool of its own: its one connection attaches the line, then applies the next report.
    url = f"{pg_url}?application_name=temp-buffers-{uuid.uuid4().hex[:8]}"
    fresh = create_app(Settings(database_url=url, redis_url=None)).test_client()
    try:
        assert fresh.put("/v1/members/X1", json={"name": "X"}, headers=admin).status_code == 200
        second = fresh.post("/v1/reports", data=(header + line.format(t="T-2") + "\n").encode(),
                            content_type="text/csv", headers=uploader)
        assert second.status_code == 202, second.get_json()
        assert fresh.get(f"/v1/reports/{second.get_json()['id']}",
                         headers=uploader).get_json()["status"] == "completed"
    finally:
        engine_for(url).dispose()
