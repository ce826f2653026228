"""Settlement benchmark: plan, approve and execute a run for N payable members spread over
the four methods (PayPal through its local sandbox, files for the others) with two rq
workers, beside the raw limit measured in the same database: one INSERT ... SELECT ...
GROUP BY computing the same balances (into an ordinary table).

    python -m bench.settle [--members 1000000] [--workers 2]

Prints members/s end to end, planning rate vs the GROUP BY rate, and phase times; writes
bench/results/settle.json. Needs PostgreSQL and Redis. Besides the GROUP BY (what planning
must at least read), a second raw figure: the run's ledger legs (reserve, then pay: four
postings per member) written as one INSERT ... SELECT, what executing must at least write.
The rq workers' peak memory is sampled over their process trees (work horses included).
`python -m bench` runs this and the ingestion benchmark together and draws them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from sqlalchemy import text

from bench.common import (ROOT, MemorySampler, analyze_and_dispose, clean_redis,
                          create_database, drop_database, seed_available_balances, spawn,
                          stop)
from settlement.runtime import tune_gc_for_bulk_work
from workers import WORKER_CLASS

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PAYOUT_DATE = dt.date(2026, 11, 15)


def _seed(url: str, members: int) -> int:
    """A US tenant, `members` members (methods 40% check, 35% PayPal, 15% Amex MR, 10% Bilt)
    each with a confirmed balance of 6.00 to 105.99, as one journal entry."""
    from settlement.db import make_engine, tenant_session
    from settlement.migrate import upgrade
    from settlement.tenants.policy import load_policy
    from settlement.tenants.service import apply_policy

    upgrade(url)
    engine = make_engine(url)
    with tenant_session(engine) as session:
        tenant, _ = apply_policy(session, load_policy(ROOT / "fixtures/tenants/us-cashback.toml"))
        t = tenant.id
        session.execute(text("""
          INSERT INTO members (tenant_id, external_id, name, address_line1, city, region,
                               postal_code, country, payout_method, paypal_email, amex_account,
                               amex_card, bilt_account, bilt_tier, joined_at)
          SELECT :t, 'RR' || lpad(g::text, 7, '0'), 'Member ' || g, g || ' Main St', 'Savannah',
                 'GA', '31401', 'US', m.method,
                 CASE WHEN m.method = 'paypal' THEN 'member' || g || '@example.com' END,
                 CASE WHEN m.method = 'amex_mr' THEN 'MR' || g END,
                 CASE WHEN m.method = 'amex_mr' THEN 'gold' END,
                 CASE WHEN m.method = 'bilt' THEN 'B' || g END,
                 CASE WHEN m.method = 'bilt' THEN 'silver' END, DATE '2025-06-01'
          FROM generate_series(1, :n) g
          CROSS JOIN LATERAL (SELECT CASE WHEN g % 20 < 8 THEN 'check'
                                          WHEN g % 20 < 15 THEN 'paypal'
                                          WHEN g % 20 < 18 THEN 'amex_mr'
                                          ELSE 'bilt' END AS method) m"""),
                        {"t": t, "n": members})
        seed_available_balances(session, t, "USD", 600, "bench balances")
        session.commit()
    analyze_and_dispose(engine)
    return t


def _raw_rates(url: str, tenant_id: int, members: int) -> tuple[float, float]:
    """(INSERT ... SELECT ... GROUP BY members/s, raw ledger-write members/s), measured in
    this database: the issue's reference for planning is one INSERT ... SELECT ... GROUP BY
    computing the same balances, into an ordinary (logged) table as the plan's items are."""
    from settlement.db import make_engine
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS raw_balances"))
        conn.execute(text("CREATE TABLE raw_balances (member_id BIGINT, available NUMERIC)"))
    with engine.begin() as conn:
        start = time.perf_counter()
        conn.execute(text("""
          INSERT INTO raw_balances (member_id, available)
          SELECT member_id, sum(amount) FROM postings
          WHERE tenant_id = :t AND account = 'available' AND member_id IS NOT NULL
          GROUP BY member_id"""), {"t": tenant_id})
        group_by = time.perf_counter() - start
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE raw_postings "
                          "(LIKE postings INCLUDING DEFAULTS INCLUDING IDENTITY)"))
        start = time.perf_counter()
        conn.execute(text("""
          INSERT INTO raw_postings (tenant_id, entry_id, account, member_id, currency, amount)
          SELECT :t, 1, leg.account, b.member_id, 'USD', leg.sign * b.available
          FROM raw_balances b
          CROSS JOIN (VALUES ('available', -1), ('reserved', 1), ('reserved', -1),
                             ('paid', 1)) AS leg(account, sign)"""), {"t": tenant_id})
        write = time.perf_counter() - start
        conn.execute(text("DROP TABLE raw_balances"))
    engine.dispose()
    return members / group_by, members / write


def _workers(n: int, env: dict, prefix: str) -> list[subprocess.Popen]:
    logs = ROOT / "var" / "bench" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return [spawn([str(Path(sys.executable).parent / "rq"), "worker", "--url",
                   REDIS_URL, "--worker-class", WORKER_CLASS, f"{prefix}payouts",
                   "--name", f"{prefix}w{i}", "--quiet"], env, logs / f"{prefix}w{i}.log")
            for i in range(n)]


def _answer_partners(outbox: Path, engine, tenant_id: int, settings,
                     stop_event: threading.Event) -> None:
    """The points partners answer each transfer file at once, and each answer is collected
    as it lands (the batch's job enqueued again, as an inbox watcher would), once the batch
    that wrote the file has recorded its submission."""
    from settlement.db import tenant_session
    from sandboxes.partners import respond, unanswered
    from workers.queue import enqueue, run_batch_job_id

    answered: set[str] = set()
    while not stop_event.is_set():
        for folder, partner, key in unanswered(outbox):
            respond(folder, partner, key)
            answered.add(key)
        if answered:
            with tenant_session(engine, tenant_id) as session:
                ready = session.execute(text(
                    "SELECT id, idempotency_key FROM run_batches WHERE tenant_id = :t "
                    "AND status = 'submitted' AND idempotency_key = ANY(:keys)"),
                    {"t": tenant_id, "keys": sorted(answered)}).all()
            for batch_id, key in ready:
                enqueue("run_batch", tenant_id, batch_id, settings=settings,
                        job_id=run_batch_job_id(settings, tenant_id, batch_id))
                answered.discard(key)
        stop_event.wait(0.2)


def run(members: int, workers: int) -> dict:
    from redis import Redis
    from rq.registry import StartedJobRegistry

    from settlement.config import Settings
    from settlement.db import make_engine, tenant_session
    from sandboxes.paypal import serve
    from settlement.runs import plan as runs
    from workers.queue import enqueue

    tune_gc_for_bulk_work()  # this process hosts the PayPal sandbox, as its own main() does
    name, url = create_database()
    workdir = ROOT / "var" / "bench" / f"settle-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True)
    prefix = f"bench-{uuid.uuid4().hex[:6]}-"
    sandbox, paypal_url = serve(client_id="bench", client_secret="bench", polls_per_step=0)
    procs: list[subprocess.Popen] = []
    stop_event = threading.Event()
    try:
        print(f"  seeding {members:,} members ...", flush=True)
        tenant_id = _seed(url, members)
        raw_rate, raw_write_rate = _raw_rates(url, tenant_id, members)
        engine = make_engine(url)
        settings = Settings(database_url=url, redis_url=REDIS_URL, queue_prefix=prefix,
                            paypal_base_url=paypal_url, paypal_client_id="bench",
                            paypal_client_secret="bench", outbox_dir=str(workdir),
                            payout_poll_seconds=0.2, payout_max_polls=600)
        env = {**os.environ, "SETTLE_DATABASE_URL": url, "SETTLE_REDIS_URL": REDIS_URL,
               "SETTLE_QUEUE_PREFIX": prefix, "SETTLE_PAYPAL_BASE_URL": paypal_url,
               "SETTLE_PAYPAL_CLIENT_ID": "bench", "SETTLE_PAYPAL_CLIENT_SECRET": "bench",
               "SETTLE_OUTBOX_DIR": str(workdir), "SETTLE_PAYOUT_POLL_SECONDS": "0.2",
               "SETTLE_PAYOUT_MAX_POLLS": "600", "SETTLE_LOG_LEVEL": "WARNING",
               "PYTHONPATH": str(ROOT)}
        procs = _workers(workers, env, prefix)
        sampler = MemorySampler({f"rq worker {i}": p.pid for i, p in enumerate(procs)})
        with sampler:
            start = time.perf_counter()
            with tenant_session(engine, tenant_id) as session:
                run_row = runs.plan_run(session, tenant_id, PAYOUT_DATE, "bench:planner")
                session.commit()
                run_id = run_row.id
            planned = time.perf_counter()
            with tenant_session(engine, tenant_id) as session:
                runs.approve_run(session, tenant_id, run_id, "bench:approver")
                session.commit()
            approved = time.perf_counter()
            enqueue("execute_run", tenant_id, run_id, settings=settings,
                    job_id=f"{prefix}exec-1")
            answering = threading.Thread(
                target=_answer_partners, args=(workdir, engine, tenant_id, settings, stop_event),
                daemon=True)
            answering.start()
            collected = 0
            while True:
                # The run's status and its batches' only: the item totals aggregate every
                # item (GET /v1/settlement-runs/{id}), read once at the end.
                with tenant_session(engine, tenant_id) as session:
                    status = runs.get_run(session, tenant_id, run_id).status
                    open_batches = session.execute(text(
                        "SELECT count(*) FROM run_batches WHERE tenant_id = :t AND run_id = :r "
                        "AND status <> 'completed'"),
                        {"t": tenant_id, "r": run_id}).scalar_one()
                    busy = session.execute(text(
                        "SELECT count(*) FROM run_batches WHERE tenant_id = :t AND run_id = :r "
                        "AND status IN ('pending', 'submitting')"),
                        {"t": tenant_id, "r": run_id}).scalar_one()
                if status.startswith("completed"):
                    break
                # Idle: nothing queued and nothing running (a collection job in flight
                # would make a resume here do its work twice).
                redis = Redis.from_url(REDIS_URL)
                queue_idle = redis.llen(f"rq:queue:{prefix}payouts") == 0 and StartedJobRegistry(
                    f"{prefix}payouts", connection=redis).count == 0
                if open_batches and not busy and queue_idle and status == "executing":
                    # An answer the watcher could not hand over (its batch was still
                    # recording): collect what is left (what `settle run execute` does on a
                    # schedule in production).
                    collected += 1
                    enqueue("execute_run", tenant_id, run_id, settings=settings,
                            job_id=f"{prefix}exec-{collected + 1}")
                if time.perf_counter() - start > 3600:
                    raise RuntimeError("the run did not complete within an hour")
                time.sleep(1.0)
            done = time.perf_counter()
            with tenant_session(engine, tenant_id) as session:
                totals = runs.run_totals(session, tenant_id, run_id)
        memory = sampler.result()
        paid = totals["members"]
        result = {
            "members": members, "workers": workers,
            "planned_items": paid,
            "skipped": {k: v["members"] for k, v in totals["skipped"].items()},
            "plan_s": round(planned - start, 2), "approve_s": round(approved - planned, 2),
            "execute_s": round(done - approved, 2), "total_s": round(done - start, 2),
            "members_per_s": round(paid / (done - start)),
            "execute_members_per_s": round(paid / (done - approved)),
            "plan_members_per_s": round(members / (planned - start)),
            "group_by_members_per_s": round(raw_rate),
            "raw_write_members_per_s": round(raw_write_rate),
            "plan_ratio": round((members / (planned - start)) / raw_rate, 3),
            "ratio": round((paid / (done - start)) / raw_write_rate, 4),
            "collect_rounds": collected,
            "peak_rss_mb": max(m["peak_process_mb"] for m in memory.values()),
            "peak_workers_total_mb": round(sum(m["peak_tree_mb"] for m in memory.values()), 1),
            "status": status, "progress": totals["progress"],
            "paypal_batches": len(json.loads(urllib.request.urlopen(
                f"{paypal_url}/_sandbox/batches").read()).get("batches", [])),
        }
        print(f"  settle {members:>9,} members  plan {result['plan_s']:6.2f} s "
              f"({result['plan_members_per_s']:,}/s, GROUP BY "
              f"{result['group_by_members_per_s']:,}/s, ratio {result['plan_ratio']})  "
              f"execute {result['execute_s']:7.2f} s  end to end "
              f"{result['members_per_s']:,} members/s (raw ledger write "
              f"{result['raw_write_members_per_s']:,}/s)  peak RSS {result['peak_rss_mb']} MB  "
              f"{status} {totals['progress']['by_status']}", flush=True)
        engine.dispose()
        return result
    finally:
        stop_event.set()
        stop(procs, timeout=20)
        sandbox.shutdown()
        clean_redis(REDIS_URL, prefix)
        drop_database(name)
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="1000000",
                        help="comma-separated sizes, e.g. 10000,100000,1000000")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = [run(int(n), args.workers) for n in args.members.split(",")]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "settle.json").write_text(json.dumps(results, indent=2))
    print(f"written {out / 'settle.json'}")


if __name__ == "__main__":
    main()
