"""The clock's exchange jobs: fulfilment and expiry of every point site, twice at once."""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from settlement.config import Settings
from settlement.exchanges.daily import expire_all, fulfil_all
from sandboxes.amazon import serve
from tests.exchanges.conftest import NOW, buckets, earn
from tests.exchanges.test_fulfil import ask, request_id, state


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_fulfilment_jobs_at_once_make_each_card_once(engine, db_url, points_tenant,
                                                         tmp_path):
    tenant = points_tenant()
    members = [earn(engine, tenant, f"M{i}", 5000) for i in range(10)]
    made = [ask(engine, tenant, m, {"exit": "amazon", "value": 1000}) for m in members]
    with serve() as amazon:
        settings = Settings(database_url=db_url, outbox_dir=str(tmp_path),
                            amazon_base_url=amazon.base_url)
        start = threading.Barrier(2, timeout=120)

        errors = []

        def job():
            start.wait()
            try:
                fulfil_all(engine, settings, tenant.slug, NOW.date())
            except Exception as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)

        threads = [threading.Thread(target=job) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        fulfil_all(engine, settings, tenant.slug, NOW.date())  # whatever one job left busy
        assert len(amazon.sandbox.cards) == 10
        assert amazon.sandbox.funds == 10_000_000 - 10 * 1000
        assert all(request_id(tenant, e) in amazon.sandbox.cards for e in made)
    assert {state(engine, tenant, e.id).status for e in made} == {"delivered"}
    assert all(buckets(engine, tenant, m)["exchanged"] == 1000 for m in members)


def test_the_expiry_job_covers_each_point_site_at_its_date(engine, points_tenant):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 700, on=dt.date(2026, 1, 5))
    assert expire_all(engine, tenant.slug, dt.date(2026, 7, 3)) == {tenant.slug: 0}
    assert expire_all(engine, tenant.slug, dt.date(2026, 7, 4)) == {tenant.slug: 1}
    assert expire_all(engine, tenant.slug, dt.date(2026, 7, 4)) == {tenant.slug: 0}
    assert buckets(engine, tenant, mid)["breakage"] == 700
