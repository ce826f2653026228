"""Reports processed by REAL rq workers (subprocesses of `rq worker --burst`) on real Redis
and PostgreSQL: an upload stays queued until a worker runs, and running a report's job
twice applies it once (the database, not Redis, is the record of what happened)."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.access.service import create_key
from settlement.config import Settings
from settlement.db import engine_for
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import apply_policy
from tests.conftest import forget_rq_keys

ROOT = Path(__file__).parents[2]
RQ = Path(sys.executable).parent / "rq"
HEADER = ("transaction_id,order_id,member,retailer,category,event_date,sale_amount,"
          "commission_amount,currency,status")
pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def prefix(redis_url):
    """A queue prefix of this test's own; afterwards every key it left in Redis is gone."""
    prefix = f"test-{uuid.uuid4().hex[:12]}-"
    jobs: set[str] = set()
    yield prefix, jobs
    forget_rq_keys(redis_url, prefix, jobs)


@pytest.fixture
def settings(pg_url, redis_url, prefix):
    return Settings(database_url=pg_url, redis_url=redis_url, queue_prefix=prefix[0])


@pytest.fixture
def queued_app(settings):
    from api import create_app
    return create_app(settings)


@pytest.fixture
def tenant(pg_url, queued_app):
    """A USD tenant with retailer macys, a 5%-of-sale rule and member M1 (set up through
    the API); returns (tenant id, keys by role)."""
    slug = f"t-{uuid.uuid4().hex[:10]}"
    policy = TenantPolicy.model_validate({
        "slug": slug, "name": f"Test {slug}", "currency": "USD",
        "timezone": "America/New_York",
        "payouts": {"dates": ["02-15", "05-15", "08-15", "11-15"], "minimum": "5.01"}})
    with Session(engine_for(pg_url)) as session:
        row, _ = apply_policy(session, policy)
        keys = {role: create_key(session, row.id, role)
                for role in ("uploader", "operator", "admin")}
        session.commit()
        tenant_id = row.id
    client, admin = queued_app.test_client(), auth(keys, "admin")
    assert client.put("/v1/retailers/macys", json={"name": "Macy's"},
                      headers=admin).status_code == 200
    assert client.post("/v1/share-rules", json={"kind": "percent_of_sale", "rate": "5"},
                       headers=admin).status_code == 201
    assert client.put("/v1/members/M1", json={"name": "Member One"},
                      headers=admin).status_code == 200
    return tenant_id, keys


def auth(keys, role):
    return {"Authorization": f"Bearer {keys[role]}"}


def report_body() -> bytes:
    rows = ["T-1,O-1,M1,macys,apparel,2026-10-01,120.00,6.00,USD,pending",
            "T-2,O-2,M1,macys,apparel,2026-10-02,40.00,2.00,USD,confirmed",
            "T-3,O-3,M2,macys,apparel,2026-10-03,20.00,1.00,USD,pending",
            "T-4,O-4,M1,macys,apparel,2026-10-04,1e3,1.00,USD,pending"]
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def run_worker(settings, pg_url, redis_url) -> subprocess.CompletedProcess:
    env = {**os.environ, "SETTLE_DATABASE_URL": pg_url, "SETTLE_REDIS_URL": redis_url,
           "SETTLE_QUEUE_PREFIX": settings.queue_prefix,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [str(RQ), "worker", "--burst", "--url", redis_url,
         "--name", f"{settings.queue_prefix}worker", f"{settings.queue_prefix}reports"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def queue_of(settings):
    from workers.queue import queue
    return queue("reports", settings)


def test_an_upload_stays_queued_until_an_rq_worker_processes_it(
        queued_app, settings, tenant, pg_url, redis_url, prefix):
    tenant_id, keys = tenant
    client = queued_app.test_client()
    response = client.post("/v1/reports", data=report_body(), content_type="text/csv",
                           headers=auth(keys, "uploader"))
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    assert answer["status"] == "queued"
    report_id = answer["id"]
    q = queue_of(settings)
    prefix[1].update(q.job_ids)
    assert q.name == f"{settings.queue_prefix}reports" and q.count == 1

    # Nothing processes it without a worker.
    waiting = client.get(f"/v1/reports/{report_id}", headers=auth(keys, "uploader")).get_json()
    assert waiting["status"] == "queued"
    assert waiting["counts"]["lines"] == 0 and waiting["counts"]["inserted"] == 0
    balance = client.get("/v1/members/M1/balance", headers=auth(keys, "operator")).get_json()
    assert (balance["pending"], balance["available"]) == ("0.00", "0.00")

    run_worker(settings, pg_url, redis_url)

    assert q.count == 0
    done = client.get(f"/v1/reports/{report_id}", headers=auth(keys, "uploader")).get_json()
    assert done["status"] == "completed"
    assert {k: done["counts"][k] for k in ("lines", "inserted", "updated", "unchanged",
                                           "stale", "rejected", "unattributed")} == {
        "lines": 4, "inserted": 3, "updated": 0, "unchanged": 0, "stale": 0, "rejected": 1,
        "unattributed": 1}
    assert [(e["line"], e["field"], e["code"]) for e in done["errors"]] == [
        (5, "sale_amount", "invalid_amount")]
    balance = client.get("/v1/members/M1/balance", headers=auth(keys, "operator")).get_json()
    assert (balance["pending"], balance["available"]) == ("6.00", "2.00")


def test_a_report_job_enqueued_twice_is_applied_once(
        queued_app, settings, tenant, pg_url, redis_url, prefix):
    from workers.queue import enqueue, report_job_id

    tenant_id, keys = tenant
    client = queued_app.test_client()
    response = client.post("/v1/reports", data=report_body(), content_type="text/csv",
                           headers=auth(keys, "uploader"))
    assert response.status_code == 202
    number = response.get_json()["id"]  # the tenant's number; jobs take the internal id
    with engine_for(pg_url).connect() as conn:
        report_id = conn.execute(text(
            "SELECT id FROM reports WHERE tenant_id = :t AND number = :n"),
            {"t": tenant_id, "n": number}).scalar_one()
    q = queue_of(settings)
    # The same job id again while it waits is not queued a second time...
    again = enqueue("process_report", tenant_id, report_id, settings=settings,
                    job_id=report_job_id(settings, tenant_id, report_id))
    assert q.count == 1 and again.id == q.job_ids[0]
    # ...but a second job for the same report (a retry, a replay, an operator) is.
    second = enqueue("process_report", tenant_id, report_id, settings=settings)
    prefix[1].update(q.job_ids)
    assert q.count == 2 and second.id in q.job_ids

    run_worker(settings, pg_url, redis_url)

    assert q.count == 0
    for job_id in prefix[1]:
        job = q.fetch_job(job_id)
        assert job is not None and job.get_status(refresh=True) == "finished", job_id
        assert job.return_value() == {"report_id": report_id, "status": "completed"}
    done = client.get(f"/v1/reports/{number}", headers=auth(keys, "uploader")).get_json()
    assert done["status"] == "completed"
    assert (done["counts"]["inserted"], done["counts"]["rejected"]) == (3, 1)
    balance = client.get("/v1/members/M1/balance", headers=auth(keys, "operator")).get_json()
    assert (balance["pending"], balance["available"]) == ("6.00", "2.00")
    with engine_for(pg_url).connect() as conn:
        keys_posted = conn.execute(text(
            "SELECT idempotency_key FROM journal_entries WHERE tenant_id = :t "
            "AND idempotency_key LIKE 'report:%'"), {"t": tenant_id}).scalars().all()
        commissions = conn.execute(text(
            "SELECT count(*) FROM commissions WHERE tenant_id = :t"),
            {"t": tenant_id}).scalar_one()
        errors = conn.execute(text(
            "SELECT count(*) FROM report_errors WHERE tenant_id = :t AND report_id = :r"),
            {"t": tenant_id, "r": report_id}).scalar_one()
    assert keys_posted == [f"report:{report_id}"]
    assert commissions == 3 and errors == 1
