"""The queues page (admins): each queue's depth, the workers, and this tenant's failed
jobs only, with requeue; on real Redis under a queue prefix of the test's own."""
from __future__ import annotations

import uuid

import pytest

from settlement.config import Settings
from tests.console.test_console_pages import post, signed_in
from tests.conftest import forget_rq_keys

pytestmark = pytest.mark.redis


@pytest.fixture
def queued(db_url, redis_url):

    from api import create_app
    prefix = f"test-{uuid.uuid4().hex[:12]}-"
    settings = Settings(database_url=db_url, redis_url=redis_url, queue_prefix=prefix,
                        secret_key="queues-test")
    yield create_app(settings), settings
    forget_rq_keys(redis_url, prefix)


def failed_job(settings, tenant_id: int):
    """A job of the tenant that failed on a real rq worker (a sweep given a bad date fails
    before it touches any database)."""
    from rq import SimpleWorker

    from workers.queue import queue
    q = queue("referrals", settings)
    job = q.enqueue("workers.jobs.sweep_referrals", tenant_id, "not-a-date",
                    job_id=f"{settings.queue_prefix}sweep-{tenant_id}")
    SimpleWorker([q], connection=q.connection).work(burst=True)
    assert job.get_status(refresh=True) == "failed"
    return job


def test_an_admin_sees_queue_depths_and_only_this_tenants_failed_jobs_and_requeues_one(
        queued, make_tenant):
    app, settings = queued
    ours, theirs = make_tenant(), make_tenant()
    mine = failed_job(settings, ours.id)
    other = failed_job(settings, theirs.id)
    admin = signed_in(app, ours.keys["admin"])
    page = admin.get("/console/queues").get_data(as_text=True)
    assert mine.id in page and "ValueError: Invalid isoformat string" in page
    assert other.id not in page
    assert '<td>referrals</td><td class="num">0</td><td class="num">0</td>' \
           '<td class="num">0</td><td class="num">2</td>' in page
    # Another tenant's job cannot be requeued from here, even by its id.
    post(admin, f"/console/queues/failed/{other.id}/requeue", page="/console/queues")
    response = post(admin, f"/console/queues/failed/{mine.id}/requeue", page="/console/queues")
    assert response.status_code == 302
    from workers.queue import queue
    q = queue("referrals", settings)
    assert q.job_ids == [mine.id]
    assert q.failed_job_registry.get_job_ids() == [other.id]
    assert "job.requeued" in admin.get("/console/audit").get_data(as_text=True)


def test_an_operator_cannot_open_the_queues(queued, make_tenant):
    app, _ = queued
    tenant = make_tenant()
    assert signed_in(app, tenant.keys["operator"]).get("/console/queues").status_code == 403
