"""`make loadtest`: the production shape on this machine under locust, then a summary.

    python -m loadtests [--duration 60] [--members 50000] [--jp-members 5000]
                        [--uploaders 6] [--operators 6] [--run-at 15] [--max-duration 900]
                        [--web-workers 2] [--web-threads 4] [--rq-workers 2]
                        [--payout-workers 1] [--opening api|sql] [--auto-explain MS]
                        [--size-mix 100:35,1000:50,10000:13,50000:2] [--out var/loadtest]

1. creates its own PostgreSQL database (127.0.0.1:5432) and uses Redis db 12 under its own
   queue prefix; seeds both fixture tenants, `--members` US members and `--jp-members`
   Japanese ones from the fixture generator, and API keys;
2. starts the Procfile's processes: gunicorn (`api:create_app()`, --web-workers x
   --web-threads), `--rq-workers` x `rq worker --with-scheduler ...` on the queues of the
   Procfile's `worker`, `--payout-workers` x `rq worker ... payouts` (its `payouts`), and
   the PayPal sandbox (`python -m sandboxes.paypal`) as its own process;
   a scheduler thread here plays the points partners (answers their transfer files), the
   inbox watcher that collects each answer as it lands, and the periodic `settle run
   execute`; loadtests/diagnostics.py watches the database and the queues meanwhile;
3. uploads the opening balances (one confirmed line per US member, as of before the
   2026-11-15 cut-off) through the API and waits until they are committed;
4. runs locust headless (loadtests/locustfile.py) with --csv and --html into --out: the
   payout run is planned and approved at --run-at seconds and the test goes on until
   --duration, or until the run completes if later (at most --max-duration);
5. stops everything it started, drops the database, deletes its Redis keys, and prints
   requests/s, p50/p95/p99 per endpoint, failures, lines/s ingested and members/s settled,
   the uploads' own throughput, where the database's time went while the run executed,
   and the goals of docs/PERFORMANCE.md (met or not). Writes OUT/summary.json and draws
   OUT/members_paid.png (loadtests/plot.py).
`--strict` exits 1 when a goal is missed.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from bench.common import (BIN, ROOT, MemorySampler, clean_redis, code_version,
                          create_database, drop_database, free_port, machine, spawn, stop,
                          wait_for_port)
from loadtests.diagnostics import Observed
from loadtests.plot import draw_from
from loadtests.reports import opening_report
from loadtests.seed import seed
from workers import WORKER_CLASS

REDIS_URL = os.environ.get("LOADTEST_REDIS_URL", "redis://127.0.0.1:6379/12")
OPENING_AS_OF = "2026-11-10T18:00:00Z"
GOALS = {"balance_p99_ms": 500, "upload_1000_p99_ms": 2000, "members_per_s": 10_000}


class Interrupted(Exception):
    pass


def _on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def _mix(text: str) -> dict[str, int]:
    mix = {}
    for part in text.split(","):
        key, _, weight = part.partition(":")
        mix[key.strip()] = int(weight or 1)
    return mix


def _http(method: str, url: str, key: str, body: bytes | None = None,
          content_type: str | None = None, timeout: float = 3600) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Authorization": f"Bearer {key}"})
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read()[:500].decode(errors="replace")}


def sql_opening(url: str, log) -> dict:
    """Opening balances written in SQL as one journal entry (as bench/settle.py seeds them):
    every US member gets 6.00 to 105.99 available. A workaround for when the report path is
    too slow for a first import of this size (see docs/PERFORMANCE.md)."""
    import psycopg
    started = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        t = conn.execute("SELECT id FROM tenants WHERE slug = 'us-cashback'").fetchone()[0]
        entry = conn.execute(
            "INSERT INTO journal_entries (tenant_id, idempotency_key, kind, memo) "
            "VALUES (%s, 'loadtest:opening', 'seed', 'opening balances') RETURNING id",
            (t,)).fetchone()[0]
        count = conn.execute("""
          INSERT INTO postings (tenant_id, entry_id, account, member_id, currency, amount)
          SELECT %(t)s, %(e)s, 'available', id, 'USD', 600 + (id * 7919) %% 10000
            FROM members WHERE tenant_id = %(t)s
          UNION ALL
          SELECT %(t)s, %(e)s, 'network_receivable', NULL, 'USD',
                 -(SELECT sum(600 + (id * 7919) %% 10000) FROM members WHERE tenant_id = %(t)s)
          """, {"t": t, "e": entry}).rowcount - 1
        conn.commit()
    elapsed = time.perf_counter() - started
    log(f"  opening balances: {count:,} members written in SQL in {elapsed:.1f} s")
    return {"lines": 0, "members": count, "seconds": round(elapsed, 1), "via": "sql"}


def upload_opening(base: str, key: str, members: int, log) -> dict:
    """Opening balances through the API, as one generic report; waits until committed."""
    started = time.perf_counter()
    body = b"".join(opening_report(members))
    status, answer = _http("POST", f"{base}/v1/reports?format=generic&source=opening"
                           f"&as_of={OPENING_AS_OF}", key, body, "text/csv")
    if status != 202:
        raise RuntimeError(f"opening balances refused: {status} {answer}")
    while True:
        time.sleep(0.5)
        status, report = _http("GET", f"{base}/v1/reports/{answer['id']}", key)
        if report.get("status") in ("completed", "failed"):
            break
        if time.perf_counter() - started > 1800:
            raise RuntimeError("opening balances not committed within 30 minutes")
    elapsed = time.perf_counter() - started
    if report["status"] != "completed" or report["counts"]["rejected"]:
        raise RuntimeError(f"opening balances: {report['status']} {report['counts']} "
                           f"{report.get('errors', [])[:3]}")
    log(f"  opening balances: {members:,} lines committed in {elapsed:.1f} s "
        f"({members / elapsed:,.0f} lines/s through gunicorn + rq)")
    return {"lines": members, "seconds": round(elapsed, 1),
            "lines_per_s": round(members / elapsed)}


class Scheduler(threading.Thread):
    """The points partners (answer every transfer file in the outbox), an inbox watcher
    (each answer collected as it lands: its batch's job enqueued again once the batch has
    recorded its submission, as `bench/settle.py` does) and, as a fallback, the periodic
    `settle run execute` (when a run still has open batches, no payout job is queued or
    running, enqueue execute_run)."""

    def __init__(self, url: str, settings, outbox: Path, every: float = 1.0,
                 resume_every: float = 10.0, collect: bool = True,
                 collect_first: bool = True):
        super().__init__(daemon=True)
        self.collect_first = collect_first
        self.url, self.settings, self.outbox, self.collect = url, settings, outbox, collect
        self.every, self.resume_every = every, resume_every
        self.halt = threading.Event()
        self.answered = self.resumed = self.collected = 0
        self.waiting: set[str] = set()  # answered files' keys whose batch has not been told
        self.errors: list[str] = []

    def run(self) -> None:
        from settlement.db import make_engine
        engine = make_engine(self.url)
        last_resume = 0.0
        try:
            while not self.halt.wait(self.every):
                try:
                    self._answer()
                    self._collect(engine)
                    if time.monotonic() - last_resume >= self.resume_every:
                        if self._resume(engine):
                            last_resume = time.monotonic()
                except Exception as exc:  # noqa: BLE001 - keep scheduling; report at the end
                    self.errors.append(repr(exc))
        finally:
            engine.dispose()

    def _answer(self) -> None:
        from sandboxes.partners import respond, unanswered
        if not self.outbox.exists():
            return
        for folder, partner, key in unanswered(self.outbox):
            respond(folder, partner, key)
            self.answered += 1
            self.waiting.add(key)

    def _collect(self, engine) -> None:
        from sqlalchemy import text

        from workers.queue import enqueue, run_batch_job_id
        if not self.collect or not self.waiting:
            return
        with engine.connect() as conn:
            ready = conn.execute(text(
                "SELECT tenant_id, id, idempotency_key FROM run_batches "
                "WHERE status = 'submitted' AND idempotency_key = ANY(:keys)"),
                {"keys": sorted(self.waiting)}).all()
        for tenant_id, batch_id, key in ready:
            # at the front: collecting an answer is short and completes the batch's members
            enqueue("run_batch", tenant_id, batch_id, settings=self.settings,
                    job_id=run_batch_job_id(self.settings, tenant_id, batch_id),
                    at_front=self.collect_first)
            self.waiting.discard(key)
            self.collected += 1

    def _resume(self, engine) -> bool:
        from rq.registry import StartedJobRegistry
        from sqlalchemy import text

        from workers.queue import enqueue, queue
        payouts = queue("payouts", self.settings)
        if payouts.count or StartedJobRegistry(queue=payouts).count:
            return False
        with engine.connect() as conn:
            runs = conn.execute(text("""
              SELECT r.tenant_id, r.id FROM settlement_runs r
              WHERE r.status = 'executing' AND EXISTS (
                SELECT 1 FROM run_batches b WHERE b.tenant_id = r.tenant_id
                   AND b.run_id = r.id AND b.status <> 'completed')""")).all()
        for tenant_id, run_id in runs:
            enqueue("execute_run", tenant_id, run_id, settings=self.settings,
                    job_id=f"{self.settings.queue_prefix}resume-{run_id}-{int(time.time())}")
            self.resumed += 1
        return bool(runs)


class Analyzer(threading.Thread):
    """ANALYZE the load test's database every `every` s: what autovacuum does in production.
    (This machine's PostgreSQL runs with autovacuum off; without fresh statistics the
    planner keeps the plans it chose for empty tables, and planning a run or applying a
    report goes from a second to minutes as the tables grow: see docs/PERFORMANCE.md.)"""

    def __init__(self, url: str, every: float):
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.halt = threading.Event()
        self.runs, self.seconds = 0, 0.0

    def run(self) -> None:
        while not self.halt.wait(self.every):
            try:
                self.seconds += analyze(self.url)
                self.runs += 1
            except Exception:  # noqa: BLE001 - the next round tries again
                pass


def analyze(url: str) -> float:
    import psycopg
    started = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def auto_explain(url: str, database: str, slower_than_ms: int) -> None:
    """Every new session of the test's database loads auto_explain (no server restart:
    session_preload_libraries) and logs the plans of statements slower than the bound."""
    import psycopg
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" SET session_preload_libraries = '
                     f"'auto_explain'")
        conn.execute(f'ALTER DATABASE "{database}" SET auto_explain.log_min_duration = '
                     f"{int(slower_than_ms)}")


def autovacuum_on(url: str) -> bool:
    import psycopg
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return conn.execute("SHOW autovacuum").fetchone()[0] == "on"


def procfile_queues(process: str = "worker") -> list[str]:
    """The queues the Procfile's `process` listens to, in its order (`worker`: every queue
    of workers.registry.QUEUES if the Procfile does not say; another process: none)."""
    from workers.registry import QUEUES
    procfile = ROOT / "Procfile"
    if procfile.exists():
        for line in procfile.read_text().splitlines():
            if line.startswith(f"{process}:"):
                named = [word for word in line.split() if word in QUEUES]
                if named:
                    return named
    return list(QUEUES) if process == "worker" else []


def workers_queues() -> set[str]:
    return set(procfile_queues()) | set(procfile_queues("payouts"))


def start_workers(args, env: dict, prefix: str, out: Path) -> list[subprocess.Popen]:
    """The Procfile's rq workers: `--rq-workers` as its `worker` (its queues, the first
    `--payouts-first` of them with `payouts` put first) and `--payout-workers` as its
    `payouts` (that queue alone, so a payout batch never waits behind a report)."""
    queues = procfile_queues()
    payouts_first = ["payouts"] + [q for q in queues if q != "payouts"]
    shapes = [(f"w{i}", payouts_first if i < args.payouts_first else queues, True)
              for i in range(args.rq_workers)]
    shapes += [(f"p{i}", procfile_queues("payouts"), False) for i in range(args.payout_workers)]
    return [spawn([str(BIN / "rq"), "worker", "--worker-class", WORKER_CLASS,
                   *(["--with-scheduler"] if scheduler else []), "--url", REDIS_URL,
                   "--name", f"{prefix}{name}", "--dequeue-strategy", args.dequeue_strategy,
                   *(prefix + q for q in names)], env, out / f"worker-{name}.log")
            for name, names, scheduler in shapes]


def read_stats(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _f(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def summarise(out: Path, wall_s: float, run: dict, extra: dict) -> dict:
    rows = read_stats(out / "locust_stats.csv")
    http, custom, aggregated = [], [], None
    for r in rows:
        row = {"type": r["Type"], "name": r["Name"], "requests": int(r["Request Count"]),
               "failures": int(r["Failure Count"]), "rps": round(_f(r["Requests/s"]), 2),
               "p50_ms": _f(r["50%"]), "p95_ms": _f(r["95%"]), "p99_ms": _f(r["99%"]),
               "max_ms": _f(r["Max Response Time"])}
        if r["Name"] == "Aggregated":
            aggregated = row
        elif r["Type"] in ("INGEST", "SETTLE"):
            custom.append(row)
        else:
            http.append(row)
    # locust's Requests/s divides by the whole test; give the HTTP rows the same basis
    lines = next((c for c in custom if c["name"] == "lines ingested"), None)
    members_paid = next((c for c in custom if c["name"] == "members paid"), None)
    custom_failures = sum(c["failures"] for c in custom)
    summary = {"wall_s": round(wall_s, 1), "aggregated": aggregated, "endpoints": http,
               "custom": custom, "run": run, **extra}
    summary["lines_ingested"] = lines["requests"] if lines else 0
    summary["lines_per_s"] = round(summary["lines_ingested"] / wall_s, 1) if wall_s else 0
    summary["members_paid"] = members_paid["requests"] if members_paid else 0
    summary["members_per_s"] = run.get("members_per_s")
    summary["uploads"] = uploads_summary(out, custom, http, wall_s, run)

    def p99(name: str) -> float | None:
        row = next((h for h in http if h["name"] == name), None)
        return row["p99_ms"] if row else None

    balance, upload = p99("GET /v1/members/{id}/balance"), p99("POST /v1/reports (1000 lines)")
    failures = (aggregated["failures"] if aggregated else 0) + custom_failures
    completed_under_load = (run.get("status") in ("completed", "completed_with_failures")
                            and run.get("completed_at") is not None)
    summary["goals"] = {
        "no failed request": {"value": failures, "met": failures == 0},
        "p99 balance < 500 ms": {"value": balance,
                                 "met": balance is not None and balance < GOALS["balance_p99_ms"]},
        "p99 1,000-line upload < 2 s": {"value": upload, "met": upload is not None
                                         and upload < GOALS["upload_1000_p99_ms"]},
        "run >= 10,000 members/s from approval to completed": {
            "value": run.get("members_per_s"),
            "met": completed_under_load
            and (run.get("members_per_s") or 0) >= GOALS["members_per_s"]},
        "run completed while uploads continued": {
            "value": f"{run.get('status', 'not started')}, {run.get('items', 0):,} items, "
                     f"{run.get('failed', 0)} refused by the provider",
            # every item reached an outcome; an item the provider refuses (the sandboxes
            # script those: partner accounts ending in 0000 are "closed") is an outcome too,
            # its money back in the member's balance
            "met": completed_under_load
            and run.get("done", 0) + run.get("failed", 0) == run.get("items", -1)},
    }
    return summary


def uploads_summary(out: Path, custom: list[dict], http: list[dict], wall_s: float,
                    run: dict) -> dict:
    """The uploads' own throughput beside the run: lines and reports committed over the
    test and while the run executed, upload-to-committed percentiles, POST p99 by size."""
    def row(rows, name):
        return next((r for r in rows if r["name"] == name), None) or {}
    lines, reports = row(custom, "lines ingested"), row(custom, "report committed")
    out_ = {"lines_ingested": lines.get("requests", 0),
            "lines_per_s": round(lines.get("requests", 0) / wall_s, 1) if wall_s else 0,
            "reports_committed": reports.get("requests", 0),
            "report_committed_ms": {k: reports.get(f"{k}_ms") for k in ("p50", "p95", "p99")},
            "post_p99_ms": {r["name"].removeprefix("POST /v1/reports ").strip("()"):
                            r["p99_ms"] for r in http
                            if r["name"].startswith("POST /v1/reports")}}
    try:
        committed = json.loads((out / "timeline.json").read_text()).get("lines", [])
    except (OSError, ValueError):
        committed = []
    if run.get("approved_at") and run.get("completed_at"):
        start, end = run["approved_at"], run["completed_at"]
        during = [n for t, n in committed if start <= t <= end]
        out_["during_run"] = {"seconds": round(end - start, 1), "lines": sum(during),
                              "reports": len(during),
                              "lines_per_s": round(sum(during) / max(end - start, 1e-9), 1)}
    return out_


def print_summary(s: dict) -> None:
    print(f"\n== load test summary ({s['wall_s']:.0f} s of traffic; {s['members']:,} US members, "
          f"{s['users']} users)")
    print(f"{'endpoint':<42} {'requests':>8} {'fail':>5} {'req/s':>7} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    rows = sorted(s["endpoints"], key=lambda r: (r["name"], r["type"]))
    if s["aggregated"]:
        rows.append(s["aggregated"])
    for r in rows:
        print(f"{r['name'][:42]:<42} {r['requests']:>8,} {r['failures']:>5} {r['rps']:>7.2f} "
              f"{r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f} {r['p99_ms']:>7.0f} {r['max_ms']:>7.0f}")
    print(f"\n{'custom metric (units, latency)':<42} {'units':>10} {'fail':>5} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'p99 ms':>8}")
    for r in s["custom"]:
        print(f"{(r['type'] + ' ' + r['name'])[:42]:<42} {r['requests']:>10,} {r['failures']:>5} "
              f"{r['p50_ms']:>8.0f} {r['p95_ms']:>8.0f} {r['p99_ms']:>8.0f}")
    run = s["run"]
    print(f"\nlines ingested under load: {s['lines_ingested']:,} "
          f"({s['lines_per_s']:,.0f} lines/s over the test; reports left unprocessed at the "
          f"end: {s.get('reports_pending', '?')})")
    if run:
        print(f"settlement run {run.get('run_id')}: {run.get('status')}, "
              f"{run.get('items', 0):,} members planned in {run.get('plan_s')} s, executed in "
              f"{run.get('execute_s', '-')} s after approval: "
              f"{run.get('members_per_s', '-')} members/s; {run.get('by_status')}")
    else:
        print("settlement run: did not reach approval "
              "(plan still running, or --run-at past the end)")
    print("peak memory (MB): " + ", ".join(
        f"{k} {v['peak_process_mb']:.0f} (tree {v['peak_tree_mb']:.0f})"
        for k, v in s.get("memory", {}).items()))
    uploads = s.get("uploads", {})
    during = uploads.get("during_run")
    if during:
        print(f"uploads while the run executed ({during['seconds']} s): {during['lines']:,} "
              f"lines in {during['reports']} reports ({during['lines_per_s']:,.0f} lines/s); "
              f"upload-to-committed p99 {uploads['report_committed_ms']['p99']} ms")
    print_database(s)
    if s.get("plot"):
        print(f"plot: {s['plot']}")
    print("\ngoals:")
    for goal, g in s["goals"].items():
        print(f"  [{'met' if g['met'] else 'MISSED'}] {goal}: {g['value']}")


def print_database(s: dict) -> None:
    """What the database and the workers did while the run executed (the whole test if
    the run never started)."""
    db = s.get("database_activity", {})
    phase = db.get("run") or db.get("all") or {}
    where = "while the run executed" if db.get("run") else "over the test"
    print(f"\ndatabase {where}: {phase.get('busy_s', 0)} s busy in {phase.get('seconds', 0)} s "
          f"(pg_stat_activity every {db.get('interval_s')} s); by wait: " + ", ".join(
              f"{w['wait']} {w['busy_s']} s" for w in phase.get("by_wait", [])[:5]))
    for row in phase.get("top", [])[:8]:
        print(f"  {row['busy_s']:>7.1f} s  {row['wait']:<28} {row['statement'][:80]}")
    for wait in phase.get("lock_waits", [])[:4]:
        print(f"  lock wait {wait['waiting_s']} s: {wait['statement'][:50]} on {wait['lock']} "
              f"{wait['on']} ({wait['mode']}) behind {[b[:40] for b in wait['blocked_by']]}")
    if phase.get("queue_nonempty_s"):
        print("  rq queues with jobs waiting (s): " + ", ".join(
            f"{q.rsplit('-', 1)[-1]} {n}" for q, n in phase["queue_nonempty_s"].items()))
    jobs = s.get("jobs") or {}
    if jobs.get("busy_s_by_queue"):
        print("  worker-seconds by queue while the run executed: " + ", ".join(
            f"{q} {n}" for q, n in jobs["busy_s_by_queue"].items()))
    stats = s.get("table_stats", {}).get("approval->completion", {})
    if stats.get("seq_tup_read"):
        print("  rows read by sequential scans while the run executed: " + ", ".join(
            f"{t['table']} {t['seq_tup_read']:,}" for t in stats["seq_tup_read"][:5]))
    statements = s.get("statements", {})
    if not statements.get("available"):
        print(f"  pg_stat_statements: not available ({statements.get('why', '')[:90]})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds of traffic")
    parser.add_argument("--members", type=int, default=50_000, help="US members (the run)")
    parser.add_argument("--jp-members", type=int, default=None,
                        help="Japanese members (default members/10, at least 1,000)")
    parser.add_argument("--uploaders", type=int, default=6, help="network uploader users")
    parser.add_argument("--operators", type=int, default=6, help="operator users")
    parser.add_argument("--spawn-rate", type=float, default=5)
    parser.add_argument("--run-at", type=float, default=None,
                        help="seconds into the test to plan and approve the run "
                             "(default a quarter of --duration)")
    parser.add_argument("--max-duration", type=int, default=None,
                        help="hard end of the test while waiting for the run "
                             "(default max(900, 3 x duration))")
    parser.add_argument("--size-mix", default="100:35,1000:50,10000:13,50000:2",
                        help="lines:weight of new reports")
    parser.add_argument("--format-mix", default="generic:35,cj:20,impact:15,awin:15,rakuten:15")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--web-keep-alive", type=int, default=5,
                        help="gunicorn --keep-alive seconds (5, as the Procfile runs it)")
    parser.add_argument("--rq-workers", type=int, default=2,
                        help="workers as the Procfile's `worker` (on its queues)")
    parser.add_argument("--payout-workers", type=int,
                        default=1 if procfile_queues("payouts") else 0,
                        help="workers as the Procfile's `payouts` (on its queues only; the "
                             "Procfile runs 1; 0 measures the shape without it)")
    parser.add_argument("--collect", choices=("inbox-first", "inbox", "periodic"),
                        default="inbox-first",
                        help="points partners' answers collected as they land, the batch's "
                             "job put at the front of the payouts queue (inbox-first) or at "
                             "its end (inbox, as bench/settle.py), or only by the resume "
                             "every 10 s (periodic)")
    parser.add_argument("--dequeue-strategy", default="round_robin",
                        choices=("default", "round_robin", "random"),
                        help="rq's (round_robin, as the Procfile runs it; default takes the "
                             "queues in the order given)")
    parser.add_argument("--payouts-first", type=int, default=0,
                        help="how many of the rq workers take `payouts` first instead of in "
                             "the Procfile's order (reports, payouts, ...)")
    parser.add_argument("--analyze-every", type=float, default=None,
                        help="seconds between ANALYZE of the database (default 30 when the "
                             "server's autovacuum is off, else never; 0: never)")
    parser.add_argument("--opening", choices=("api", "sql"), default="api",
                        help="opening balances: one report through the API (default), or "
                             "one journal entry in SQL")
    parser.add_argument("--auto-explain", type=int, default=0, metavar="MS",
                        help="log the plan of every statement slower than MS ms to the "
                             "server's log (auto_explain, set on the test's database; 0: off)")
    parser.add_argument("--payout-date", default="2026-11-15")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "loadtest")
    parser.add_argument("--keep-db", action="store_true", help="leave the database (debug)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args(argv)
    jp_members = args.jp_members or max(1000, args.members // 10)
    run_at = args.run_at if args.run_at is not None else args.duration / 4
    max_duration = args.max_duration or max(900, 3 * args.duration)
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    shutil.rmtree(out, ignore_errors=True)
    (out / "outbox").mkdir(parents=True)
    signal.signal(signal.SIGTERM, _on_signal)

    def log(message: str) -> None:
        print(message, flush=True)

    token = uuid.uuid4().hex[:6]
    prefix = f"load-{token}-"
    procs: list[subprocess.Popen] = []
    scheduler: Scheduler | None = None
    observed: Observed | None = None
    name, url = create_database("settle_load")
    log(f"load test {token}: database {name}, Redis {REDIS_URL} prefix {prefix}, out {out}")
    summary: dict = {}
    try:
        log("seeding from the fixtures ...")
        keys = seed(url, {"us-cashback": args.members, "jp-points": jp_members}, out, log)
        if args.auto_explain:
            auto_explain(url, name, args.auto_explain)
        paypal_port, web_port = free_port(), free_port()
        paypal_url = f"http://127.0.0.1:{paypal_port}"
        base = f"http://127.0.0.1:{web_port}"
        env = {**os.environ, "SETTLE_DATABASE_URL": url, "SETTLE_REDIS_URL": REDIS_URL,
               "SETTLE_QUEUE_PREFIX": prefix, "SETTLE_PAYPAL_BASE_URL": paypal_url,
               "SETTLE_PAYPAL_CLIENT_ID": "loadtest", "SETTLE_PAYPAL_CLIENT_SECRET": "loadtest",
               "SETTLE_OUTBOX_DIR": str(out / "outbox"), "SETTLE_PAYOUT_POLL_SECONDS": "1",
               "SETTLE_PAYOUT_MAX_POLLS": "120", "SETTLE_LOG_LEVEL": "WARNING",
               "PYTHONPATH": str(ROOT)}
        log(f"starting the PayPal sandbox, gunicorn ({args.web_workers}x{args.web_threads}) "
            f"and {args.rq_workers} rq workers (+ {args.payout_workers} on payouts alone) ...")
        paypal = spawn([sys.executable, "-m", "sandboxes.paypal", "--port",
                        str(paypal_port), "--client-id", "loadtest", "--client-secret",
                        "loadtest", "--polls-per-step", "1"], env, out / "paypal.log")
        procs.append(paypal)
        web = spawn([str(BIN / "gunicorn"), "--workers", str(args.web_workers), "--threads",
                     str(args.web_threads), "--timeout", "600", "--bind",
                     f"127.0.0.1:{web_port}", "--log-level", "warning",
                     *(["--keep-alive", str(args.web_keep_alive)] if args.web_keep_alive else []),
                     "api:create_app()"],
                    env, out / "web.log")
        procs.append(web)
        workers = start_workers(args, env, prefix, out)
        procs.extend(workers)
        wait_for_port(paypal_port, paypal, what="PayPal sandbox")
        wait_for_port(web_port, web, what="gunicorn")
        memory = MemorySampler({"web": web.pid, "paypal sandbox": paypal.pid}, interval=0.25)
        for w in workers:
            memory.add(w.args[w.args.index("--name") + 1].removeprefix(prefix), w.pid)
        with memory:
            if args.opening == "sql":
                opening = sql_opening(url, log)
            else:
                opening = upload_opening(base, keys["us-cashback"]["uploader"], args.members,
                                         log)
            autovacuum = autovacuum_on(url)
            analyze_every = args.analyze_every if args.analyze_every is not None else \
                (0 if autovacuum else 30)
            analyzer = Analyzer(url, analyze_every)
            if analyze_every:
                analyze(url)
                analyzer.start()
                log(f"  autovacuum is {'on' if autovacuum else 'off'} on this server: "
                    f"ANALYZE every {analyze_every:.0f} s")
            from settlement.config import Settings
            scheduler = Scheduler(url, Settings(database_url=url, redis_url=REDIS_URL,
                                                queue_prefix=prefix, outbox_dir=str(out / "outbox"),
                                                paypal_base_url=paypal_url), out / "outbox",
                                  collect=args.collect != "periodic",
                                  collect_first=args.collect == "inbox-first")
            scheduler.start()
            observed = Observed(url, name, prefix, out, REDIS_URL, sorted(workers_queues()))
            config = {
                "token": token, "keys": keys, "duration": args.duration,
                "max_duration": max_duration, "run_at": run_at,
                "members": {"us-cashback": args.members, "jp-points": jp_members},
                "payout_date": args.payout_date, "size_mix": _mix(args.size_mix),
                "format_mix": _mix(args.format_mix), "uploader_weight": args.uploaders,
                "operator_weight": args.operators, "run_summary": str(out / "run.json"),
                "timeline": str(out / "timeline.json"),
            }
            (out / "config.json").write_text(json.dumps(config, indent=2))
            users = args.uploaders + args.operators + 1
            log(f"locust: {args.uploaders} uploaders, {args.operators} operators, 1 payout "
                f"operator; {args.duration} s (run at {run_at:.0f} s; at most {max_duration} s)")
            started = time.monotonic()
            locust = spawn([str(BIN / "locust"), "-f", str(ROOT / "loadtests/locustfile.py"),
                            "--headless", "-u", str(users), "-r", str(args.spawn_rate),
                            "--host", base, "--csv", str(out / "locust"), "--html",
                            str(out / "locust.html"), "--only-summary", "--loglevel", "WARNING",
                            "--stop-timeout", "5"],
                           {**env, "LOADTEST_CONFIG": str(out / "config.json")},
                           out / "locust.log")
            procs.append(locust)
            memory.add("locust", locust.pid)
            try:
                locust.wait(timeout=max_duration + 120)
            except subprocess.TimeoutExpired:
                log("locust did not stop in time: stopping it")
                stop([locust])
            wall = time.monotonic() - started
            scheduler.halt.set()
            scheduler.join(timeout=10)
            observed.stop()
            analyzer.halt.set()
            pending = _pending_reports(url)
        run = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
        summary = summarise(out, wall, run, {
            "members": args.members, "jp_members": jp_members, "users": users,
            "uploaders": args.uploaders, "operators": args.operators, "run_at": run_at,
            "opening": opening, "reports_pending": pending, "memory": memory.result(),
            "scheduler": {"partner_files_answered": scheduler.answered,
                          "collected_as_answered": scheduler.collected,
                          "collect": args.collect,
                          "resumes": scheduler.resumed, "errors": scheduler.errors[:5]},
            "web": f"{args.web_workers}x{args.web_threads}", "rq_workers": args.rq_workers,
            "payout_workers": args.payout_workers, "web_keep_alive": args.web_keep_alive,
            "dequeue_strategy": args.dequeue_strategy, "payouts_first": args.payouts_first,
            **observed.result(run),
            "autovacuum": autovacuum, "analyze_every_s": analyze_every,
            "analyze": {"runs": analyzer.runs, "seconds": round(analyzer.seconds, 1)},
            "code": code_version(),
            "size_mix": args.size_mix, "format_mix": args.format_mix,
            "machine": machine(), "measured_at": dt.datetime.now(dt.timezone.utc)
            .isoformat(timespec="seconds"), "locust_exit": locust.returncode})
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        summary["plot"] = draw_from(out, summary)
    except (KeyboardInterrupt, Interrupted) as exc:
        log(f"interrupted ({exc}): cleaning up")
        return 130
    finally:
        # a second Ctrl-C or SIGTERM must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if scheduler is not None:
            scheduler.halt.set()
        if observed is not None:
            observed.stop()
        stop(procs, timeout=15)
        clean_redis(REDIS_URL, prefix)
        if not args.keep_db:
            drop_database(name)
        shutil.rmtree(out / "outbox", ignore_errors=True)
    print_summary(summary)
    print(f"\nlocust CSV and HTML: {out}/locust_stats.csv, {out}/locust.html; "
          f"summary {out}/summary.json")
    if args.strict and not all(g["met"] for g in summary["goals"].values()):
        return 1
    return 0


def _pending_reports(url: str) -> int:
    from sqlalchemy import text

    from settlement.db import make_engine
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.execute(text(
            "SELECT count(*) FROM reports WHERE status IN ('queued', 'processing')")).scalar_one()
    engine.dispose()
    return count


if __name__ == "__main__":
    sys.exit(main())
