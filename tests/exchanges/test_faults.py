"""A fulfilment worker killed (SIGKILL, a real process) between handing exchanges to their
partner and recording the outcome: the next run of the job neither sends anything twice nor
loses an exchange (PostgreSQL). Gift codes: killed while Amazon makes the card. Bank and
points transfers: killed at each failpoint of settlement/failpoints.py's EXCHANGE_POINTS
(the file written but its batch not recorded; the answer or the date read but nothing
recorded; a bank return notice applied but not filed away)."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.config import Settings
from settlement.exchanges.daily import fulfil_all
from sandboxes.amazon import serve
from settlement.exchanges import zengin
from settlement.exchanges.returns import FILED
from settlement.failpoints import EXCHANGE_POINTS
from sandboxes import partners as partner_sandbox
from tests.exchanges.conftest import BANK, NOW, buckets, earn
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


TODAY = NOW.date()
BANK_DATE = dt.date(2026, 11, 25)  # Thursday 19 + 3 business days (Monday 23 a holiday)
PAYPAY_DATE = dt.date(2026, 11, 20)  # the next business day


def run_job(db_url: str, outbox: Path, slug: str, day: dt.date, failpoint: str | None = None):
    """One run of the fulfilment job in its own process; with `failpoint`, the process
    SIGKILLs itself there (and the test checks it did)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if failpoint:
        env["SETTLE_FAILPOINT"] = failpoint
    done = subprocess.run([sys.executable, "-c", WORKER, db_url, "http://127.0.0.1:9",
                           str(outbox), slug, day.isoformat()], cwd=ROOT, env=env,
                          capture_output=True, timeout=120)
    expected = -signal.SIGKILL if failpoint else 0
    assert done.returncode == expected, done.stderr.decode()[-2000:]


def entries_of(engine, tenant, exchange_id: int) -> list[str]:
    with Session(engine) as session:
        return session.execute(text(
            "SELECT kind FROM journal_entries WHERE tenant_id = :t AND idempotency_key "
            "LIKE :k ORDER BY id"), {"t": tenant.id, "k": f"exchange:{exchange_id}:%"}
        ).scalars().all()


def only_file(outbox: Path, pattern: str) -> Path:
    found = list(outbox.rglob(pattern))
    assert len(found) == 1, f"{pattern}: {found}"
    return found[0]


def bank_case(engine, db_url, tenant, outbox, point):
    """Two transfers; the worker dies at `point` on the way; returns what each must end as."""
    mids = [earn(engine, tenant, f"M{n}", 5000) for n in (1, 2)]
    ex = [ask(engine, tenant, mid, {"exit": "bank", "value": v, "destination": BANK})
          for mid, v in zip(mids, (3000, 1500))]
    if point == "exchange.file_written":
        run_job(db_url, outbox, tenant.slug, TODAY, point)
        written = only_file(outbox, "zengin-*.txt").read_bytes()
        run_job(db_url, outbox, tenant.slug, TODAY)
        assert only_file(outbox, "zengin-*.txt").read_bytes() == written
        run_job(db_url, outbox, tenant.slug, BANK_DATE)
        return {ex[0].id: "delivered", ex[1].id: "delivered"}, mids, ex
    run_job(db_url, outbox, tenant.slug, TODAY)
    if point == "exchange.answered":
        run_job(db_url, outbox, tenant.slug, BANK_DATE, point)
        assert {state(engine, tenant, e.id).status for e in ex} == {"processing"}
        run_job(db_url, outbox, tenant.slug, BANK_DATE)
        return {ex[0].id: "delivered", ex[1].id: "delivered"}, mids, ex
    # exchange.returns_applied: delivered, then the bank returns the first after its date.
    run_job(db_url, outbox, tenant.slug, BANK_DATE)
    notice = partner_sandbox.return_transfers(only_file(outbox, "zengin-*.txt"),
                                              {ex[0].id: "3"}, dt.date(2026, 11, 27))
    run_job(db_url, outbox, tenant.slug, dt.date(2026, 11, 27), point)
    assert notice.exists(), "killed before the notice was filed away"
    assert state(engine, tenant, ex[0].id).status == "failed"
    run_job(db_url, outbox, tenant.slug, dt.date(2026, 11, 27))
    assert not notice.exists() and (notice.parent / FILED / notice.name).exists()
    return {ex[0].id: "failed", ex[1].id: "delivered"}, mids, ex


def points_case(engine, db_url, tenant, outbox, point):
    mids = [earn(engine, tenant, f"M{n}", 5000) for n in (1, 2)]
    ex = [ask(engine, tenant, mid, {"exit": "paypay", "value": 1000,
                                    "destination": {"account": account}})
          for mid, account in zip(mids, ("pp-1", "pp-0000"))]  # the sandbox rejects 0000
    if point == "exchange.file_written":
        run_job(db_url, outbox, tenant.slug, TODAY, point)
        written = only_file(outbox, "paypay-transfer-*.csv").read_bytes()
        run_job(db_url, outbox, tenant.slug, TODAY)
        assert only_file(outbox, "paypay-transfer-*.csv").read_bytes() == written
    else:
        run_job(db_url, outbox, tenant.slug, TODAY)
    for folder, partner, key in partner_sandbox.unanswered(outbox):
        partner_sandbox.respond(folder, partner, key)
    if point == "exchange.answered":
        run_job(db_url, outbox, tenant.slug, PAYPAY_DATE, point)
        assert {state(engine, tenant, e.id).status for e in ex} == {"processing"}
    run_job(db_url, outbox, tenant.slug, PAYPAY_DATE)
    return {ex[0].id: "delivered", ex[1].id: "failed"}, mids, ex


CASES = [("bank", point, bank_case) for point in EXCHANGE_POINTS] + [
    ("points", point, points_case) for point in EXCHANGE_POINTS
    if point != "exchange.returns_applied"]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("exit_kind, point, case", CASES,
                         ids=[f"{kind}-{point}" for kind, point, _ in CASES])
def test_a_worker_killed_at_each_step_of_a_transfer_sends_it_once_and_loses_nothing(
        engine, db_url, points_tenant, tmp_path, exit_kind, point, case):
    tenant = points_tenant()
    outbox = tmp_path / "outbox"
    expected, mids, exchanges = case(engine, db_url, tenant, outbox, point)
    assert {e.id: state(engine, tenant, e.id).status for e in exchanges} == expected
    # Sent once: one transfer file, each exchange in it once.
    if exit_kind == "bank":
        _, *data, _, _ = zengin.parse_file(only_file(outbox, "zengin-*.txt").read_bytes())
        assert sorted(int(d["customer_code1"]) for d in data) == sorted(expected)
    else:
        body = only_file(outbox, "paypay-transfer-*.csv").read_text()
        assert sorted(body.count(f"x{tenant.id}-{e}") for e in expected) == [1, 1]
    # Recorded once: one outcome entry per exchange, the money where its state says.
    for mid, exchange in zip(mids, exchanges):
        kinds = entries_of(engine, tenant, exchange.id)
        balances = buckets(engine, tenant, mid)
        assert kinds.count("exchange_delivered") <= 1 and kinds.count("exchange_failed") <= 1
        assert kinds.count("exchange_returned") <= 1 and balances["reserved"] == 0
        if expected[exchange.id] == "delivered":
            assert balances["exchanged"] == exchange.debit
        else:
            assert (balances["available"], balances.get("exchanged", 0)) == (5000, 0)
