"""Report bodies as networks export them (issue 11: gzip and UTF-16 bodies were reported as
missing_header): gzip is inflated within the size limit, counted after inflation; UTF-16
and unknown encodings are refused with the reason, and nothing is stored."""
from __future__ import annotations

import gzip
import io

from sqlalchemy import text

from api import create_app
from settlement.config import Settings
from tests.api.conftest import TenantApi

AS_OF = "2026-11-24T00:00:00Z"


def stored_reports(engine, tenant) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM reports WHERE tenant_id = :t"),
                            {"t": tenant.id}).scalar_one()


def test_a_gzip_body_with_content_encoding_is_inflated_and_applied(api):
    api.setup()
    body = gzip.compress(api.csv(api.row("T-1")))
    response = api.client.post("/v1/reports", data=body, content_type="text/csv",
                               headers={**api.h("uploader"), "Content-Encoding": "gzip"},
                               query_string={"as_of": AS_OF})
    assert response.status_code == 202, response.get_json()
    assert api.report(response.get_json()["id"])["counts"]["inserted"] == 1
    assert api.money("M1") == ("6.00", "0.00")


def test_a_csv_gz_file_in_a_multipart_upload_is_inflated(api):
    api.setup()
    data = {"file": (io.BytesIO(gzip.compress(api.csv(api.row("T-1")))), "report.csv.gz")}
    response = api.client.post("/v1/reports", data=data, content_type="multipart/form-data",
                               headers=api.h("uploader"), query_string={"as_of": AS_OF})
    assert response.status_code == 202, response.get_json()
    assert api.report(response.get_json()["id"])["counts"]["inserted"] == 1


def test_the_size_limit_counts_inflated_bytes(db_url, make_tenant, engine):
    app = create_app(Settings(database_url=db_url, redis_url=None, max_upload_bytes=10_000))
    api = TenantApi(app.test_client(), make_tenant())
    bomb = gzip.compress(api.csv(*[api.row("T-1")] * 2_000))
    assert len(bomb) < 10_000
    response = api.client.post("/v1/reports", data=bomb, content_type="text/csv",
                               headers={**api.h("uploader"), "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert stored_reports(engine, api.tenant) == 0


def test_a_damaged_gzip_body_is_refused_and_nothing_is_stored(api, engine, tenant):
    body = gzip.compress(api.csv(api.row("T-1")))[:-12]
    response = api.client.post("/v1/reports", data=body, content_type="text/csv",
                               headers={**api.h("uploader"), "Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["code"] == "invalid_gzip"
    assert stored_reports(engine, tenant) == 0


def test_an_encoding_we_do_not_read_answers_415(api, engine, tenant):
    response = api.client.post("/v1/reports", data=b"\x00\x01", content_type="text/csv",
                               headers={**api.h("uploader"), "Content-Encoding": "br"})
    assert response.status_code == 415
    assert stored_reports(engine, tenant) == 0


def test_a_utf16_body_is_refused_saying_so(api, engine, tenant):
    for encoding in ("utf-16", "utf-16-le"):
        body = api.csv(api.row("T-1")).decode().encode(encoding)
        response = api.upload(body)
        assert response.status_code == 400, encoding
        error = response.get_json()["errors"][0]
        assert error["code"] == "not_utf8" and "UTF-16" in error["message"]
    assert stored_reports(engine, tenant) == 0
