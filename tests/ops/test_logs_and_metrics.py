"""Logs: JSON, a request id on every line of a request, an access-log line, no secret
ever written. Metrics: /metrics in Prometheus text format, requests by route and status,
report lines by outcome, job durations, queue depths."""
from __future__ import annotations

import io
import json
import logging
import re
import uuid

import pytest
import structlog

from settlement import logs
from settlement.config import Settings
from tests.conftest import generic_csv


@pytest.fixture
def log_lines():
    """Every JSON line logged while the test runs, parsed (the app configures the same
    handler on its creation: created first, then pointed at this buffer)."""
    buffer = io.StringIO()

    def read() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line]
    read.buffer = buffer
    yield read
    logs.configure()  # back to stderr


@pytest.fixture
def app_logging(app, log_lines):
    logs.configure(stream=log_lines.buffer)
    return app


def _setup(client, tenant):
    admin = tenant.auth("admin")
    assert client.put("/v1/retailers/macys", json={"name": "Macy's"},
                      headers=admin).status_code == 200
    assert client.post("/v1/share-rules", json={"kind": "percent_of_sale", "rate": "5"},
                       headers=admin).status_code == 201
    assert client.put("/v1/members/M1", json={"name": "One"}, headers=admin).status_code == 200


def test_every_log_line_of_a_request_carries_its_x_request_id(app_logging, client, tenant,
                                                             log_lines):
    _setup(client, tenant)
    body = generic_csv("T-1,O-1,M1,macys,apparel,2026-10-01,120.00,6.00,USD,pending")
    response = client.post("/v1/reports", data=body, content_type="text/csv",
                           headers={**tenant.auth("uploader"), "X-Request-ID": "req-upload-1"})
    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == "req-upload-1"
    ours = [line for line in log_lines() if line.get("request_id") == "req-upload-1"]
    events = {line["event"] for line in ours}
    # The in-process report job logs under the request that enqueued it.
    assert {"report.processing", "report.processed", "request"} <= events
    access = [line for line in ours if line["event"] == "request"]
    assert len(access) == 1
    assert access[0]["route"] == "/v1/reports" and access[0]["status"] == 202
    assert access[0]["logger"] == "settle.access" and access[0]["level"] == "info"


def test_a_request_without_a_sane_request_id_gets_a_new_one(app_logging, client, log_lines):
    first = client.get("/v1/health").headers["X-Request-ID"]
    insane = 'bad id {"x": 1}' + "y" * 200
    second = client.get("/v1/health", headers={"X-Request-ID": insane}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second
    assert {line["request_id"] for line in log_lines() if line["event"] == "request"} == {
        first, second}


def test_no_api_key_cookie_or_gift_code_is_ever_logged(app_logging, client, tenant,
                                                       log_lines):
    key = tenant.keys["admin"]
    cookie = f"session-{uuid.uuid4().hex}"
    gift = f"GIFT-{uuid.uuid4().hex[:16]}"
    client.get("/v1/retailers", headers={"Authorization": f"Bearer {key}",
                                         "Cookie": f"console_session={cookie}"})
    client.get("/v1/retailers", headers={"Authorization": f"Bearer {key}x"})  # a wrong key
    structlog.get_logger("settle.test").info("exchange", gift_code=gift, key=key,
                                             note=f"made with {key}")
    logging.getLogger("settle.test").error("stdlib line with %s", key)
    quoted = f"GIFT-{uuid.uuid4().hex[:16]}"
    in_repr = f"GIFT-{uuid.uuid4().hex[:16]}"
    try:
        raise RuntimeError(f'failed for {key}: answer {{"gcClaimCode": "{quoted}", "x": 1}}')
    except RuntimeError:
        logging.getLogger("settle.test").exception("boom")
    structlog.get_logger("settle.test").warning(
        "answer", answer=f"GiftCardAnswer(status='SUCCESS', claim_code='{in_repr}')")
    text = log_lines.buffer.getvalue()
    assert "exchange" in text and "boom" in text and "stdlib line" in text
    assert "GiftCardAnswer(status='SUCCESS', claim_code='[redacted]')" in text
    for secret in (key, key[len("sk_"):], cookie, gift, quoted, in_repr):
        assert secret not in text


def _metric(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_by_route_and_status_and_report_lines_by_outcome(
        client, tenant):
    _setup(client, tenant)
    before = client.get("/metrics").get_data(as_text=True)
    body = generic_csv("T-1,O-1,M1,macys,apparel,2026-10-01,120.00,6.00,USD,pending",
                       "T-2,O-2,M9,macys,apparel,2026-10-01,120.00,6.00,USD,pending",
                       "T-3,O-3,M1,macys,apparel,2026-10-01,abc,6.00,USD,pending")
    assert client.post("/v1/reports", data=body, content_type="text/csv",
                       headers=tenant.auth("uploader")).status_code == 202
    assert client.get("/v1/reports/999999999", headers=tenant.auth("uploader")).status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    after = response.get_data(as_text=True)

    def grew(name, **labels):
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert grew("settle_http_requests_total", method="POST", route="/v1/reports",
                status="202") == 1
    assert grew("settle_http_requests_total", method="GET",
                route="/v1/reports/<int:report_id>", status="404") == 1
    assert grew("settle_http_request_duration_seconds_count", method="POST",
                route="/v1/reports") == 1
    # An unattributed line (member M9 unknown) is inserted too, and counted as both.
    assert grew("settle_report_lines_total", format="generic", outcome="inserted") == 2
    assert grew("settle_report_lines_total", format="generic", outcome="unattributed") == 1
    assert grew("settle_report_lines_total", format="generic", outcome="rejected") == 1
    assert grew("settle_job_duration_seconds_count", job="process_report",
                outcome="finished") == 1


def test_metrics_show_queue_depths_when_jobs_go_to_rq(sqlite_url, redis_url):
    from redis import Redis

    from api import create_app
    from workers.queue import queue
    prefix = f"test-{uuid.uuid4().hex[:12]}-"
    settings = Settings(database_url=sqlite_url, redis_url=redis_url, queue_prefix=prefix)
    job = queue("referrals", settings).enqueue("workers.jobs.sweep_referrals", 1)
    try:
        text = create_app(settings).test_client().get("/metrics").get_data(as_text=True)
        assert _metric(text, "settle_queue_jobs", queue="referrals", state="queued") == 1
        assert _metric(text, "settle_queue_jobs", queue="reports", state="queued") == 0
    finally:
        redis = Redis.from_url(redis_url)
        doomed = list(redis.scan_iter(match=f"rq:*{prefix}*")) + [f"rq:job:{job.id}"]
        redis.delete(*doomed)
        redis.srem("rq:queues", f"rq:queue:{prefix}referrals")
        redis.close()


def test_metrics_still_answer_with_the_counters_when_the_database_is_down():
    from api import create_app
    client = create_app(Settings(database_url="postgresql://postgres@127.0.0.1:1/x",
                                 redis_url="redis://127.0.0.1:1/0")).test_client()
    client.get("/v1/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert _metric(text, "settle_state_up", source="database") == 0
    assert _metric(text, "settle_state_up", source="redis") == 0
    assert _metric(text, "settle_http_requests_total", route="/v1/health", status="200") >= 1
    assert "settle_run_items{" not in text


def test_state_sources_that_answer_are_up(client):
    text = client.get("/metrics").get_data(as_text=True)
    assert _metric(text, "settle_state_up", source="database") == 1
    assert 'settle_state_up{source="redis"}' not in text  # jobs in-process: no Redis
