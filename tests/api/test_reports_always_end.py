"""Every report ends: the uploads that once left a report `processing` forever (issue 11)
now end `failed` or `completed` with errors an uploader can read, GET never answers 500, a
failed report can be retried, and the watchdog picks up reports whose job died."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from settlement.config import Settings
from settlement.db import tenant_session
from settlement.models import Report
from settlement.reports import service as reports
from workers.queue import enqueue

AS_OF = "2026-11-24T00:00:00Z"


def report_count(engine, tenant) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM reports WHERE tenant_id = :t"),
                            {"t": tenant.id}).scalar_one()


def uploaded(api, body: bytes, content_type: str = "text/csv", **query) -> dict:
    response = api.upload(body, content_type, as_of=AS_OF, **query)
    assert response.status_code == 202, response.get_json()
    return api.report(response.get_json()["id"])


def codes(report: dict) -> set[str]:
    return {e["code"] for e in report["errors"]}


def test_a_tab_separated_file_fails_with_its_long_header_named_instead_of_sticking(api):
    api.setup()
    tsv = api.csv(api.row("T-1")).replace(b",", b"\t")
    report = uploaded(api, tsv)
    assert report["status"] == "failed"
    [error] = [e for e in report["errors"] if e["code"] == "unknown_column"]
    assert error["line"] == 1 and len(error["field"]) <= 64
    assert r"transaction_id\torder_id" in error["message"]  # the tab, as repr shows it


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("media", ["json", "ndjson"])
def test_json_nested_a_thousand_deep_fails_the_report_with_a_readable_error(api, media):
    api.setup()
    record = '{"transaction_id": ' + _nested(1000) + "}"
    body = (f"[{record}]" if media == "json" else record + "\n").encode()
    report = uploaded(api, body, "application/json" if media == "json"
                      else "application/x-ndjson")
    assert report["status"] in ("failed", "completed")
    assert report["counts"]["inserted"] == 0
    assert report["errors"] and all(e["message"] for e in report["errors"])


def test_amounts_beyond_the_line_bound_are_refused_by_line_and_field(api):
    api.setup()
    report = uploaded(api, api.csv(api.row("T-1", sale="999999999999.99",
                                            commission="999999999999.99"),
                                    api.row("T-2")))
    assert report["status"] == "completed"
    assert {(e["line"], e["field"], e["code"]) for e in report["errors"]} == {
        (2, "sale_amount", "amount_too_large"), (2, "commission_amount", "amount_too_large")}
    assert report["counts"]["inserted"] == 1


def test_a_report_whose_total_is_beyond_the_report_bound_is_refused_whole(api):
    api.setup()
    # 999,999,999.9999 is the most one line may carry; 1,001 of them pass a trillion.
    rows = [api.row(f"T-{i}", sale="999999999.9999", commission="1.00") for i in range(1001)]
    report = uploaded(api, api.csv(*rows))
    assert report["status"] == "failed"
    assert [(e["line"], e["field"], e["code"]) for e in report["errors"]] == [
        (1002, "sale_amount", "report_total_too_large")]
    assert api.money("M1") == ("0.00", "0.00")


def test_the_issue_93000_lines_of_the_largest_amount_end_refused_line_by_line(
        api, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the bigint overflow was PostgreSQL's; SQLite runs the smaller cases")
    api.setup()
    rows = [api.row(f"T-{i}", sale="999999999999.99", commission="999999999999.99")
            for i in range(93_000)]
    report = uploaded(api, api.csv(*rows))
    assert report["status"] in ("completed", "failed")
    assert report["counts"]["inserted"] == 0 and report["counts"]["rejected"] == 93_000
    assert codes(report) == {"amount_too_large"}


@pytest.mark.parametrize("as_of", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
                                   "1999-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00"])
def test_an_as_of_outside_2000_to_now_answers_422_and_stores_nothing(api, engine, tenant,
                                                                      as_of):
    response = api.upload(api.csv(api.row("T-1")), as_of=as_of)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"][0]["field"] == "as_of"
    assert report_count(engine, tenant) == 0


@pytest.mark.parametrize("event_date", ["0001-01-01", "1999-12-31"])
def test_an_event_date_before_2000_is_refused_by_line_and_field(api, event_date):
    api.setup()
    report = uploaded(api, api.csv(api.row("T-1", event_date=event_date), api.row("T-2")))
    assert [(e["line"], e["field"], e["code"]) for e in report["errors"]] == [
        (2, "event_date", "date_out_of_range")]
    assert report["counts"]["inserted"] == 1


def test_a_positive_sale_with_a_negative_commission_is_refused(api):
    api.setup()
    report = uploaded(api, api.csv(api.row("T-1", sale="100.00", commission="-10.00",
                                            status="confirmed")))
    assert [(e["line"], e["field"], e["code"]) for e in report["errors"]] == [
        (2, "commission_amount", "sign_mismatch")]
    assert api.money("M1") == ("0.00", "0.00")


# ---------------------------------------------------------------------------------------
# Retry and the watchdog


def _stored_not_processed(engine, tenant, body: bytes) -> int:
    """A report stored by an upload whose job then died (never ran, or was killed): its
    internal id (what jobs and the watchdog use; the API's is number_of's)."""
    with tenant_session(engine, tenant.id) as session:
        received = reports.receive(session, tenant.id, "generic", "csv", [body],
                                   uploaded_by="test", max_bytes=1 << 20)
        session.commit()
    return received.report_id


def number_of(engine, tenant, report_id: int) -> int:
    with tenant_session(engine, tenant.id) as session:
        return session.scalar(select(Report.number).where(Report.tenant_id == tenant.id,
                                                          Report.id == report_id))


def _requeue_inline(engine):
    return lambda tenant_id, report_id: reports.process(engine, tenant_id, report_id)


def test_the_watchdog_processes_a_report_whose_job_died(api, engine, tenant):
    api.setup()
    report_id = _stored_not_processed(engine, tenant, api.csv(api.row("T-1")))
    number = number_of(engine, tenant, report_id)  # what the API calls it
    assert api.report(number)["status"] == "queued"
    watched = reports.requeue_stalled_reports(engine, _requeue_inline(engine),
                                              stalled_after=dt.timedelta(0))
    assert (tenant.id, report_id) in watched.requeued
    assert api.report(number)["status"] == "completed"
    assert api.money("M1") == ("6.00", "0.00")
    again = reports.requeue_stalled_reports(engine, _requeue_inline(engine),
                                            stalled_after=dt.timedelta(0))
    assert (tenant.id, report_id) not in again.requeued  # it ended: nothing to do


def test_the_watchdog_leaves_a_report_younger_than_its_delay(api, engine, tenant):
    report_id = _stored_not_processed(engine, tenant, api.csv(api.row("T-1")))
    number = number_of(engine, tenant, report_id)  # what the API calls it
    watched = reports.requeue_stalled_reports(engine, _requeue_inline(engine),
                                              stalled_after=dt.timedelta(days=1))
    assert (tenant.id, report_id) not in watched.requeued
    assert api.report(number)["status"] == "queued"


def test_the_watchdog_skips_a_report_a_worker_is_applying(api, engine, tenant, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("workers hold a report's row lock on PostgreSQL")
    report_id = _stored_not_processed(engine, tenant, api.csv(api.row("T-1")))
    with tenant_session(engine, tenant.id) as worker:
        worker.execute(text("SELECT 1 FROM reports WHERE tenant_id = :t AND id = :r "
                            "FOR UPDATE"), {"t": tenant.id, "r": report_id})
        watched = reports.requeue_stalled_reports(engine, _requeue_inline(engine),
                                                  stalled_after=dt.timedelta(0))
    assert (tenant.id, report_id) not in watched.requeued


def test_a_report_whose_jobs_died_too_often_fails_and_a_retry_applies_it(api, engine, tenant):
    api.setup()
    report_id = _stored_not_processed(engine, tenant, api.csv(api.row("T-1")))
    number = number_of(engine, tenant, report_id)  # what the API calls it
    with Session(engine) as session:
        session.execute(text("UPDATE reports SET status = 'processing', attempts = :n "
                             "WHERE tenant_id = :t AND id = :r"),
                        {"n": reports.MAX_ATTEMPTS, "t": tenant.id, "r": report_id})
        session.commit()
    watched = reports.requeue_stalled_reports(engine, _requeue_inline(engine),
                                              stalled_after=dt.timedelta(0))
    assert (tenant.id, report_id) in watched.abandoned
    failed = api.report(number)
    assert failed["status"] == "failed" and codes(failed) == {"processing_abandoned"}
    assert f"/v1/reports/{number}/retry" in failed["errors"][0]["message"]
    # The same bytes again name the failed report; retry is the way to run it again.
    same = api.upload(api.csv(api.row("T-1")))
    assert same.status_code == 200 and same.get_json()["id"] == number
    retried = api.client.post(f"/v1/reports/{number}/retry", headers=api.h("uploader"))
    assert retried.status_code == 202, retried.get_json()
    report = api.report(number)
    assert report["status"] == "completed" and report["errors"] == []
    assert api.money("M1") == ("6.00", "0.00")


def test_only_a_failed_report_can_be_retried(api):
    api.setup()
    report = uploaded(api, api.csv(api.row("T-1")))
    response = api.client.post(f"/v1/reports/{report['id']}/retry", headers=api.h("uploader"))
    assert response.status_code == 409
    assert api.money("M1") == ("6.00", "0.00")  # applied once, not twice


def test_retry_of_another_tenants_report_answers_404(api, api_for):
    other = api_for()
    other.setup()
    report = uploaded(other, other.csv(other.row("T-1", sale="-1.00")))
    response = api.client.post(f"/v1/reports/{report['id']}/retry", headers=api.h("uploader"))
    assert response.status_code == 404


def test_the_watch_reports_job_processes_a_report_whose_job_died(api, engine, tenant, db_url):
    api.setup()
    report_id = _stored_not_processed(engine, tenant, api.csv(api.row("T-1")))
    number = number_of(engine, tenant, report_id)  # what the API calls it
    with Session(engine) as session:  # uploaded long before the watchdog's delay
        session.execute(text("UPDATE reports SET created_at = :old WHERE tenant_id = :t "
                             "AND id = :r"),
                        {"old": dt.datetime(2026, 1, 1), "t": tenant.id, "r": report_id})
        session.commit()
    result = enqueue("watch_reports", settings=Settings(database_url=db_url, redis_url=None))
    assert [tenant.id, report_id] in json.loads(json.dumps(result["requeued"]))
    assert api.report(number)["status"] == "completed"


def test_a_lower_case_currency_in_our_own_format_is_refused_by_line_and_field(api):
    api.setup()
    report = uploaded(api, api.csv(api.row("T-1", currency="usd"), api.row("T-2")))
    assert [(e["line"], e["field"], e["code"]) for e in report["errors"]] == [
        (2, "currency", "invalid_currency")]
    assert "'USD'" in report["errors"][0]["message"]
    assert report["counts"]["inserted"] == 1
