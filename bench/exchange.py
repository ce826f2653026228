"""Exchange benchmark: members of a point site asking for exchanges at once, each request
its own transaction (the member's row taken, the balance read from the ledger, the exchange
inserted and its points reserved by a balanced entry), from C processes with a connection
each (as gunicorn's workers), at M members; beside the raw limit measured in the same
database the same way: single-row INSERT transactions into a bare table (what one request
must at least do).

    python -m bench.exchange [--members 100000] [--requests 5000] [--connections 8]

Prints exchanges accepted per second, the raw single-row INSERT rate and their ratio;
writes bench/results/exchange.json. Needs PostgreSQL.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import time
from pathlib import Path

from sqlalchemy import text

from bench.common import (ROOT, analyze_and_dispose, create_database, drop_database,
                          seed_available_balances)

MOMENT = dt.datetime(2026, 11, 19, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


def _seed(url: str, members: int) -> int:
    """The jp-points tenant, `members` members each holding 1,000 to 10,999 points, as one
    journal entry."""
    from settlement.db import make_engine, tenant_session
    from settlement.migrate import upgrade
    from settlement.tenants.policy import load_policy
    from settlement.tenants.service import apply_policy

    upgrade(url)
    engine = make_engine(url)
    with tenant_session(engine) as session:
        tenant, _ = apply_policy(session, load_policy(ROOT / "fixtures/tenants/jp-points.json"))
        t = tenant.id
        session.execute(text(
            "INSERT INTO members (tenant_id, external_id, name) "
            "SELECT :t, 'HP' || lpad(g::text, 7, '0'), 'Member ' || g "
            "FROM generate_series(1, :n) g"), {"t": t, "n": members})
        seed_available_balances(session, t, "JPY", 1000, "bench points")
        session.commit()
    analyze_and_dispose(engine)
    return t


def _in_processes(connections: int, work, *args) -> tuple[float, list]:
    """work(index, connections, *args, start=barrier) in `connections` forked processes
    (each with its own connection, as gunicorn's workers are: no interpreter lock shared),
    released together; seconds from the common start to the last end, and each process's
    result."""
    context = multiprocessing.get_context("fork")
    start = context.Barrier(connections + 1)
    answers = context.Queue()

    def run(index: int) -> None:
        answers.put(work(index, connections, *args, start=start))

    processes = [context.Process(target=run, args=(i,)) for i in range(connections)]
    for process in processes:
        process.start()
    start.wait(timeout=300)
    began = time.perf_counter()
    results = [answers.get(timeout=3600) for _ in processes]
    seconds = time.perf_counter() - began
    for process in processes:
        process.join()
    return seconds, results


def _exchange_worker(index: int, connections: int, url: str, tenant_id: int,
                     chosen: list[int], start=None) -> dict[str, int]:
    from sqlalchemy.orm import Session

    from settlement.db import make_engine
    from settlement.exchanges.quote import ExchangeError
    from settlement.exchanges.service import request_exchange
    from settlement.models import Tenant
    from settlement.tenants.service import policy_of

    engine = make_engine(url)
    with Session(engine) as session:
        policy = policy_of(session.get(Tenant, tenant_id))
    start.wait()
    outcomes: dict[str, int] = {}
    for n, member_id in enumerate(chosen[index::connections]):
        body = {"exit": "amazon" if n % 2 else "paypay", "value": 500,
                "use_campaign": False}  # the fixture campaign has a budget of 3
        if body["exit"] == "paypay":
            body["destination"] = {"account": f"pp-{member_id}"}
        with Session(engine) as session:
            try:
                request_exchange(session, tenant_id, policy, member_id, body,
                                 f"bench-{member_id}", MOMENT)
                session.commit()
                code = "accepted"
            except ExchangeError as exc:
                session.rollback()
                code = exc.code
        outcomes[code] = outcomes.get(code, 0) + 1
    engine.dispose()
    return outcomes


def _exchanges(url: str, tenant_id: int, members: int, requests: int,
               connections: int) -> tuple[float, dict[str, int]]:
    from settlement.db import make_engine
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM members WHERE tenant_id = :t ORDER BY id"),
                           {"t": tenant_id}).scalars().all()
    engine.dispose()
    step = max(1, members // requests)
    chosen = ids[::step][:requests]  # spread over the whole member table
    seconds, results = _in_processes(connections, _exchange_worker, url, tenant_id, chosen)
    outcomes: dict[str, int] = {}
    for mine in results:
        for code, count in mine.items():
            outcomes[code] = outcomes.get(code, 0) + count
    return seconds, outcomes


def _insert_worker(index: int, connections: int, url: str, requests: int,
                   start=None) -> int:
    from settlement.db import make_engine
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.commit()
        start.wait()
        for n in range(index, requests, connections):
            conn.execute(text("INSERT INTO raw_rows (member, points) VALUES (:m, 500)"),
                         {"m": n})
            conn.commit()
    engine.dispose()
    return 0


def _raw_inserts(url: str, requests: int, connections: int) -> float:
    """Single-row INSERT transactions into a bare table, over as many processes."""
    from settlement.db import make_engine
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS raw_rows"))
        conn.execute(text("CREATE TABLE raw_rows (id BIGSERIAL PRIMARY KEY, member BIGINT, "
                          "points BIGINT)"))
    engine.dispose()
    seconds, _ = _in_processes(connections, _insert_worker, url, requests)
    return seconds


def run(members: int = 100_000, requests: int = 5_000, connections: int = 8) -> dict:
    name, url = create_database("settle_bench_exchange")
    try:
        started = time.perf_counter()
        tenant_id = _seed(url, members)
        seed_s = time.perf_counter() - started
        seconds, outcomes = _exchanges(url, tenant_id, members, requests, connections)
        raw_s = _raw_inserts(url, requests, connections)
    finally:
        drop_database(name)
    accepted = outcomes.get("accepted", 0)
    result = {"members": members, "requests": requests, "connections": connections,
              "seed_s": round(seed_s, 2), "seconds": round(seconds, 2),
              "outcomes": outcomes, "accepted_per_s": round(accepted / seconds),
              "raw_inserts_per_s": round(requests / raw_s),
              "ratio": round((accepted / seconds) / (requests / raw_s), 3)}
    print(f"   {members:,} members, {requests:,} requests over {connections} connections: "
          f"{result['accepted_per_s']:,} exchanges accepted/s ({outcomes}); raw single-row "
          f"INSERT {result['raw_inserts_per_s']:,}/s; ratio {result['ratio']}", flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.exchange",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    result = run(args.members, args.requests, args.connections)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "exchange.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
