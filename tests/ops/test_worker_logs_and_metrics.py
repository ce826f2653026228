"""A job on a real rq worker logs under the id of the request that enqueued it, and its
run time and report lines reach /metrics through the multiprocess folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.workers.test_rq_worker import (ROOT, RQ, auth, prefix, queued_app,  # noqa: F401
                                          report_body, settings, tenant)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _env(settings, pg_url, redis_url, multiproc_dir) -> dict:
    return {**os.environ, "SETTLE_DATABASE_URL": pg_url, "SETTLE_REDIS_URL": redis_url,
            "SETTLE_QUEUE_PREFIX": settings.queue_prefix,
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")]))}


def test_a_worker_job_logs_with_the_request_id_and_counts_in_multiprocess_metrics(
        queued_app, settings, tenant, pg_url, redis_url, prefix, tmp_path):
    tenant_id, keys = tenant
    response = queued_app.test_client().post(
        "/v1/reports", data=report_body(), content_type="text/csv",
        headers={**auth(keys, "uploader"), "X-Request-ID": "req-from-browser-7"})
    assert response.status_code == 202
    prefix[1].add(f"{settings.queue_prefix}report-{tenant_id}-{response.get_json()['id']}")
    env = _env(settings, pg_url, redis_url, tmp_path)
    worker = subprocess.run(
        [str(RQ), "worker", "--burst", "--url", redis_url, "--worker-class",
         "workers.worker.PreloadedWorker", "--name", f"{settings.queue_prefix}worker",
         f"{settings.queue_prefix}reports"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr
    lines = [json.loads(line) for line in worker.stderr.splitlines() if line.startswith("{")]
    processed = [line for line in lines if line.get("event") == "report.processed"]
    assert len(processed) == 1, worker.stderr
    assert processed[0]["request_id"] == "req-from-browser-7"
    # rq's own lines come out as JSON too, and those of the job under its request.
    assert any(line.get("logger", "").startswith("rq.") for line in lines)

    scrape = subprocess.run(
        [sys.executable, "-c", "from api import create_app; import sys; "
         "sys.stdout.write(create_app().test_client().get('/metrics').get_data(as_text=True))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert scrape.returncode == 0, scrape.stderr
    text = scrape.stdout
    assert 'settle_job_duration_seconds_count{job="process_report",outcome="finished"} 1.0' \
        in text
    assert 'settle_report_lines_total{format="generic",outcome="rejected"} 1.0' in text
