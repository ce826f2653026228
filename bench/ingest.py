"""Ingestion benchmark: one upload of N generic lines through the HTTP API (gunicorn, real
socket) until its commissions and postings are committed, beside the raw limit measured in
the same run: `psql \\copy` of the same file into a bare table of the same database, and into
a table with the commissions' keys (the keyed copy, the limit for an idempotent engine).

    python -m bench.ingest [--sizes 100000,1000000] [--members 100000]

Prints lines/s, the copy rate, their ratio, and the web worker's peak memory per size;
writes bench/results/ingest.json. Needs PostgreSQL (BENCH_PG_ADMIN_URL). `python -m bench`
runs this and the settlement benchmark together and draws them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy.orm import Session

from bench.common import (BIN, ROOT, create_database, descendants, drop_database, free_port,
                          peak_rss_mb, spawn, stop, wait_for_port)


def _seed(url: str, members: int, workdir: Path) -> tuple[str, int]:
    """The US fixture tenant, its retailers and rules, `members` members; an uploader key
    and the tenant id."""
    from settlement.access.service import create_key
    from settlement.catalog.service import parse_member_file, upsert_members, upsert_retailer
    from settlement.commissions.rules import RuleInput, create_rule
    from settlement.db import make_engine
    from settlement.migrate import upgrade
    from settlement.tenants.policy import load_policy
    from settlement.tenants.service import apply_policy

    upgrade(url)
    engine = make_engine(url)
    members_csv = workdir / "members.csv"
    subprocess.run([sys.executable, "-m", "fixtures.generate", "members", "--count",
                    str(members), "--out", str(members_csv)], check=True, cwd=ROOT)
    with Session(engine) as session:
        tenant, _ = apply_policy(session, load_policy(ROOT / "fixtures/tenants/us-cashback.toml"))
        for r in json.loads((ROOT / "fixtures/us-cashback/retailers.json").read_text()):
            upsert_retailer(session, tenant.id, r["slug"], r["name"], r.get("category"),
                            r.get("network_ids", {}))
        for r in json.loads((ROOT / "fixtures/us-cashback/share_rules.json").read_text()):
            create_rule(session, tenant.id, 2, RuleInput(
                r.get("retailer"), r.get("category"), r["kind"], r.get("rate"), r.get("amount"),
                dt.date.fromisoformat(r["valid_from"]) if r.get("valid_from") else None,
                dt.date.fromisoformat(r["valid_to"]) if r.get("valid_to") else None,
                r.get("priority", 0), r.get("category_only", False)))
        batch = parse_member_file(members_csv.read_bytes(), "csv", dt.date(2026, 12, 31))
        assert not batch.errors, batch.errors[:3]
        upsert_members(session, tenant.id, "USD", batch, "bench")
        key = create_key(session, tenant.id, "uploader", "bench")
        tenant_id = tenant.id
        session.commit()
    engine.dispose()
    members_csv.unlink()
    return key, tenant_id


def _psql(url: str, command: str) -> None:
    subprocess.run(["psql", url.replace("postgresql+psycopg://", "postgresql://"), "-qc",
                    command], check=True)


def _raw_copy_rate(url: str, path: Path, lines: int) -> float:
    """The raw limit: `psql \\copy` of the same file into a bare table (text columns, no
    index, no constraint), in the same database."""
    _psql(url, "SET client_min_messages = warning; DROP TABLE IF EXISTS bare; "
               "CREATE TABLE bare (transaction_id text, "
               "order_id text, member text, retailer text, category text, event_date text, "
               "sale_amount text, commission_amount text, currency text, status text)")
    start = time.perf_counter()
    _psql(url, f"\\copy bare FROM '{path}' WITH (FORMAT csv, HEADER)")
    elapsed = time.perf_counter() - start
    _psql(url, "DROP TABLE bare")
    return lines / elapsed


def _keyed_copy_rate(url: str, path: Path, lines: int) -> float:
    """The limit an idempotent engine is measured against: `psql \\copy` of the same file
    into a table with the commissions table's keys (a primary key led by the tenant, the
    unique idempotency key, the member index) and typed columns, in the same database."""
    _psql(url, "SET client_min_messages = warning; DROP TABLE IF EXISTS keyed; "
               "CREATE TABLE keyed (tenant_id bigint NOT NULL DEFAULT 1, "
               "id bigint GENERATED ALWAYS AS IDENTITY, transaction_id text NOT NULL, "
               "order_id text, member text, retailer text, category text, event_date date, "
               "sale_amount numeric(20, 4), commission_amount numeric(20, 4), "
               "currency char(3), status text, PRIMARY KEY (tenant_id, id), "
               "UNIQUE (tenant_id, transaction_id)); "
               "CREATE INDEX keyed_member ON keyed (tenant_id, member)")
    start = time.perf_counter()
    _psql(url, "\\copy keyed (transaction_id, order_id, member, retailer, category, "
               f"event_date, sale_amount, commission_amount, currency, status) FROM '{path}' "
               "WITH (FORMAT csv, HEADER)")
    elapsed = time.perf_counter() - start
    _psql(url, "DROP TABLE keyed")
    return lines / elapsed


def _start_web(url: str, port: int, log: Path | None = None):
    env = {**os.environ, "SETTLE_DATABASE_URL": url, "SETTLE_LOG_LEVEL": "WARNING"}
    env.pop("SETTLE_REDIS_URL", None)  # the job runs in the request: upload-to-committed
    proc = spawn([str(BIN / "gunicorn"), "--workers", "1", "--timeout", "1800",
                  "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                  "api:create_app()"], env, log)
    try:
        wait_for_port(port, proc, what="gunicorn")
    except BaseException:
        stop([proc])
        raise
    return proc


def _worker_pid(master: int) -> int:
    return descendants(master)[0]


def _upload(port: int, key: str, path: Path) -> tuple[float, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600, blocksize=1 << 20)
    start = time.perf_counter()
    with path.open("rb") as body:
        conn.request("POST", "/v1/reports?format=generic", body=body, headers={
            "Authorization": f"Bearer {key}", "Content-Type": "text/csv",
            "Content-Length": str(path.stat().st_size)})
        response = conn.getresponse()
        answer = json.loads(response.read())
    elapsed = time.perf_counter() - start
    if response.status != 202:
        raise RuntimeError(f"upload answered {response.status}: {answer}")
    conn.request("GET", f"/v1/reports/{answer['id']}", headers={"Authorization": f"Bearer {key}"})
    status = json.loads(conn.getresponse().read())
    conn.close()
    return elapsed, status


def generate_report(path: Path, size: int, members: int) -> None:
    subprocess.run([sys.executable, "-m", "fixtures.generate", "--lines", str(size),
                    "--members", str(members), "--seed", str(size), "--prefix",
                    f"b{size}-", "--out", str(path)], check=True, cwd=ROOT)


def run(sizes: list[int], members: int) -> list[dict]:
    """One fresh database for all sizes (each size its own transaction ids); per size: the
    raw \\copy rate, then the upload through a fresh gunicorn."""
    workdir = ROOT / "var" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    name, url = create_database()
    results = []
    try:
        key, _ = _seed(url, members, workdir)
        for size in sizes:
            path = workdir / f"generic_{size}.csv"
            generate_report(path, size, members)
            try:
                # fresh statistics for each size, as autovacuum would give (this machine's
                # PostgreSQL may run with autovacuum off)
                _psql(url, "ANALYZE")
                # Each timed part starts from a checkpoint: otherwise the pages and WAL the
                # part before left dirty are written out during the next one (the keyed
                # copy's rate moved 100k-150k rows/s from run to run without it).
                _psql(url, "CHECKPOINT")
                copy_rate = _raw_copy_rate(url, path, size)
                _psql(url, "CHECKPOINT")
                keyed_rate = _keyed_copy_rate(url, path, size)
                port = free_port()
                web = _start_web(url, port)
                try:
                    _psql(url, "CHECKPOINT")
                    elapsed, status = _upload(port, key, path)
                    peak = peak_rss_mb(_worker_pid(web.pid))
                finally:
                    stop([web], timeout=60)
                rate = size / elapsed
                row = {"lines": size, "seconds": round(elapsed, 2), "lines_per_s": round(rate),
                       "copy_rows_per_s": round(copy_rate), "ratio": round(rate / copy_rate, 3),
                       "keyed_copy_rows_per_s": round(keyed_rate),
                       "keyed_ratio": round(rate / keyed_rate, 3),
                       "copy_seconds": round(size / copy_rate, 2),
                       "peak_rss_mb": round(peak, 1), "status": status["status"],
                       "counts": status["counts"], "bytes": path.stat().st_size,
                       "members": members}
            finally:
                path.unlink(missing_ok=True)
            results.append(row)
            print(f"  ingest {size:>9,} lines  {elapsed:7.2f} s  {rate:>9,.0f} lines/s   "
                  f"psql \\copy {copy_rate:>9,.0f} rows/s   ratio {rate / copy_rate:5.3f}   "
                  f"keyed copy {keyed_rate:>9,.0f} rows/s   ratio {rate / keyed_rate:5.3f}   "
                  f"peak RSS {peak:7.1f} MB   {status['status']} "
                  f"inserted {status['counts']['inserted']:,}", flush=True)
    finally:
        drop_database(name)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"ingestion through HTTP (gunicorn, 1 worker) on PostgreSQL; {args.members} members")
    results = run(sizes, args.members)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(results, indent=2))
    print(f"written {out / 'ingest.json'}")


if __name__ == "__main__":
    main()
