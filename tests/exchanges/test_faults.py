"""A fulfilment worker killed (SIGKILL) while Amazon is making its gift card: the card was
made, the answer never recorded; the next job asks again with the same creationRequestId
and delivers that card, once (PostgreSQL, a real process)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from settlement.config import Settings
from settlement.exchanges.daily import fulfil_all
from settlement.payouts.sandbox.amazon import serve
from tests.exchanges.conftest import NOW, buckets, earn
from tests.exchanges.test_fulfil import ask, request_id, state

ROOT = Path(__file__).parents[2]
WORKER = """
import datetime as dt, sys
from settlement.config import Settings
from settlement.db import engine_for
from settlement.exchanges.daily import fulfil_all
url, base, outbox, slug, day = sys.argv[1:]
fulfil_all(engine_for(url), Settings(database_url=url, amazon_base_url=base,
                                     outbox_dir=outbox), slug, dt.date.fromisoformat(day))
"""


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_worker_killed_during_create_gift_card_leaves_one_card_delivered_once(
        engine, db_url, points_tenant, tmp_path):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    exchange = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    with serve() as amazon:
        amazon.sandbox.script(request_id(tenant, exchange), "slow")
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, amazon.base_url, str(tmp_path), tenant.slug,
             NOW.date().isoformat()], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            for _ in range(600):  # until Amazon has made the card (at most 60 s)
                if amazon.sandbox.cards or worker.poll() is not None:
                    break
                time.sleep(0.1)
            assert amazon.sandbox.cards, "the worker never reached Amazon"
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
        assert state(engine, tenant, exchange.id).status == "processing"
        settings = Settings(database_url=db_url, amazon_base_url=amazon.base_url,
                            outbox_dir=str(tmp_path))
        fulfil_all(engine, settings, tenant.slug, NOW.date())
        assert (len(amazon.sandbox.cards), amazon.sandbox.creates) == (1, 2)
    done = state(engine, tenant, exchange.id)
    assert (done.status, done.attempts) == ("delivered", 2)
    assert buckets(engine, tenant, mid)["exchanged"] == 1000
    assert buckets(engine, tenant, mid)["reserved"] == 0
