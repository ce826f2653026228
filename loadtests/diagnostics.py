"""What the database and the queues were doing during a load test, from their own views.

- `DbSampler`: every `every` s, the test database's active backends from `pg_stat_activity`
  (wait event and statement), the lock waits from `pg_locks` (who waits, on what, behind
  which statements: `pg_blocking_pids`), and the rq queues' depths (waiting and started
  jobs). Samples carry the wall-clock time, so that the summary splits them into the
  phases of the test: before approval, while the run executes, after it.
- `TableStats`: `pg_stat_user_tables` and `pg_stat_database` read at each phase boundary;
  the deltas say which tables were scanned or updated how much in each phase.
- `Statements`: `pg_stat_statements` when the server preloads it (not on this machine:
  the extension needs `shared_preload_libraries` and a restart); the reason otherwise.
- `job_timeline`: each rq job's queue, start and end from the workers' JSON log lines.

A sample is a diagnostic: an error is recorded and never fails the test.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from pathlib import Path

PHASES = ("before_run", "run", "after_run")

ACTIVITY_SQL = """
  SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, '-'), query
  FROM pg_stat_activity
  WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid()"""

# The waiter's statement, the lock it waits for, and the statements of those blocking it.
LOCK_WAITS_SQL = """
  SELECT a.query, l.locktype,
         coalesce(CASE WHEN l.relation IS NOT NULL THEN l.relation::regclass::text END,
                  l.transactionid::text, l.objid::text, '') AS target, l.mode,
         (SELECT array_agg(coalesce(b.query, '')) FROM pg_stat_activity b
           WHERE b.pid = ANY (pg_blocking_pids(a.pid))) AS blockers
  FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
  WHERE a.datname = %s AND a.wait_event_type = 'Lock'"""


def shape(query: str | None, width: int = 110) -> str:
    """A statement's first `width` characters, whitespace folded: its identity in counts."""
    return re.sub(r"\s+", " ", query or "").strip()[:width]


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


class DbSampler(threading.Thread):
    def __init__(self, url: str, database: str, redis_url: str, queues: list[str],
                 every: float = 0.5, path: Path | None = None,
                 stats: "TableStats | None" = None, run_file: Path | None = None):
        super().__init__(daemon=True)
        self.url, self.database, self.every, self.path = url, database, every, path
        self.redis_url, self.queues = redis_url, queues
        # the table counters are read when run_file (locust's run.json) first shows the
        # approval, and its completion
        self.stats, self.run_file = stats, run_file
        self.marked: set[str] = set()
        self.halt = threading.Event()
        # (wall time, [(wait type, wait event, statement)], [lock wait], {queue: depth})
        self.samples: list[tuple[float, list, list, dict]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        import psycopg
        from redis import Redis
        redis = Redis.from_url(self.redis_url)
        try:
            with psycopg.connect(_plain(self.url), autocommit=True) as conn:
                while not self.halt.wait(self.every):
                    self.samples.append(self._sample(conn, redis))
                    self._mark_phases()
                    if self.path and len(self.samples) % 20 == 0:
                        self.path.write_text(json.dumps(self.result(None), indent=1))
        except Exception as exc:  # noqa: BLE001 - a diagnostic; never fail the test for it
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        finally:
            redis.close()

    def _mark_phases(self) -> None:
        if self.stats is None or self.run_file is None or len(self.marked) == 2 \
                or len(self.samples) % 2:
            return
        try:
            run = json.loads(self.run_file.read_text())
        except (OSError, ValueError):
            return
        for mark, field in (("approval", "approved_at"), ("completion", "completed_at")):
            if mark not in self.marked and run.get(field):
                self.marked.add(mark)
                self.stats.mark(mark)

    def _sample(self, conn, redis) -> tuple[float, list, list, dict]:
        now = time.time()
        active = [(kind, event, shape(query)) for kind, event, query
                  in conn.execute(ACTIVITY_SQL, (self.database,)).fetchall()]
        waits = []
        if any(kind == "Lock" for kind, _, _ in active):
            waits = [(shape(q), locktype, target, mode, sorted({shape(b) for b in blockers or []}))
                     for q, locktype, target, mode, blockers
                     in conn.execute(LOCK_WAITS_SQL, (self.database,)).fetchall()]
        depths = {}
        try:
            pipe = redis.pipeline()
            for name in self.queues:
                pipe.llen(f"rq:queue:{name}")
                pipe.zcard(f"rq:wip:{name}")
            values = pipe.execute()
            for i, name in enumerate(self.queues):
                depths[name] = {"queued": values[2 * i], "started": values[2 * i + 1]}
        except Exception as exc:  # noqa: BLE001 - Redis trouble is the test's own finding
            self.errors.append(f"redis: {exc!r}"[:200])
        return now, active, waits, depths

    def result(self, window: tuple[float, float] | None, top: int = 15) -> dict:
        """Busy seconds by wait event, by statement, and by both; lock waits with their
        blockers; each for the whole test and for its phases (`window`: approval and
        completion as wall-clock times, when the run got that far)."""
        out = {"samples": len(self.samples), "interval_s": self.every,
               "errors": self.errors[:5], "all": _aggregate(self.samples, self.every, top)}
        if window:
            for phase, part in split_phases(self.samples, window).items():
                out[phase] = _aggregate(part, self.every, top)
        return out

    def series(self) -> list[dict]:
        """Per sample: time, active backends, lock waiters, queue depths (for the plot)."""
        return [{"t": t, "active": len(active),
                 "lock_waits": sum(1 for kind, _, _ in active if kind == "Lock"),
                 "queues": depths} for t, active, _, depths in self.samples]


def split_phases(samples: list, window: tuple[float, float]) -> dict[str, list]:
    """Samples before approval, between approval and completion, and after."""
    start, end = window
    parts = {phase: [] for phase in PHASES}
    for sample in samples:
        t = sample[0]
        parts["before_run" if t < start else "run" if t <= end else "after_run"].append(sample)
    return parts


def _aggregate(samples: list, every: float, top: int) -> dict:
    by_wait: dict[str, int] = {}
    by_statement: dict[str, int] = {}
    by_both: dict[tuple[str, str], int] = {}
    locks: dict[tuple, int] = {}
    queued: dict[str, int] = {}
    for _, active, waits, depths in samples:
        for kind, event, statement in active:
            wait = f"{kind}:{event}"
            by_wait[wait] = by_wait.get(wait, 0) + 1
            by_statement[statement] = by_statement.get(statement, 0) + 1
            by_both[(wait, statement)] = by_both.get((wait, statement), 0) + 1
        for waiter, locktype, target, mode, blockers in waits:
            key = (waiter, locktype, target, mode, tuple(blockers))
            locks[key] = locks.get(key, 0) + 1
        for name, depth in depths.items():
            if depth["queued"]:
                queued[name] = queued.get(name, 0) + 1

    def seconds(n: int) -> float:
        return round(n * every, 1)

    def ranked(counts: dict) -> list:
        return sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return {
        "samples": len(samples), "seconds": seconds(len(samples)),
        "busy_s": seconds(sum(by_wait.values())),
        "by_wait": [{"wait": w, "busy_s": seconds(n)} for w, n in ranked(by_wait)],
        "by_statement": [{"statement": s, "busy_s": seconds(n)} for s, n in ranked(by_statement)],
        "top": [{"busy_s": seconds(n), "wait": w, "statement": s}
                for (w, s), n in ranked(by_both)],
        "lock_waits": [{"waiting_s": seconds(n), "statement": k[0], "lock": k[1],
                        "on": k[2], "mode": k[3], "blocked_by": list(k[4])}
                       for k, n in ranked(locks)],
        # seconds during which a queue had jobs waiting for a worker
        "queue_nonempty_s": {name: seconds(n) for name, n in sorted(queued.items())},
    }


class TableStats:
    """Counters of the database and its tables, read at each phase boundary."""

    TABLES_SQL = """
      SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0), coalesce(idx_tup_fetch, 0),
             n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del
      FROM pg_stat_user_tables"""
    TABLE_FIELDS = ("seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_ins",
                    "n_tup_upd", "n_tup_hot_upd", "n_tup_del")
    DATABASE_SQL = """
      SELECT xact_commit, xact_rollback, blks_read, blks_hit, temp_files, temp_bytes,
             deadlocks, tup_returned, tup_fetched
      FROM pg_stat_database WHERE datname = current_database()"""
    DATABASE_FIELDS = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "temp_files",
                       "temp_bytes", "deadlocks", "tup_returned", "tup_fetched")

    def __init__(self, url: str):
        self.url = url
        self.marks: list[tuple[str, dict]] = []

    def mark(self, name: str) -> None:
        import psycopg
        try:
            with psycopg.connect(_plain(self.url), autocommit=True) as conn:
                # the statistics collector's snapshot is per transaction: take a fresh one
                conn.execute("SELECT pg_stat_clear_snapshot()")
                tables = {row[0]: dict(zip(self.TABLE_FIELDS, row[1:]))
                          for row in conn.execute(self.TABLES_SQL).fetchall()}
                database = dict(zip(self.DATABASE_FIELDS,
                                    conn.execute(self.DATABASE_SQL).fetchone()))
            self.marks.append((name, {"tables": tables, "database": database}))
        except Exception as exc:  # noqa: BLE001 - a diagnostic
            self.marks.append((name, {"error": repr(exc)[:200]}))

    def deltas(self, top: int = 8) -> dict:
        """Between consecutive marks: the database's counters and the tables with the
        most rows read by sequential scans, and the most rows updated."""
        out = {}
        for (a_name, a), (b_name, b) in zip(self.marks, self.marks[1:]):
            if "error" in a or "error" in b:
                continue
            database = {k: b["database"][k] - a["database"][k] for k in self.DATABASE_FIELDS}
            tables = {}
            for name, row in b["tables"].items():
                before = a["tables"].get(name, dict.fromkeys(self.TABLE_FIELDS, 0))
                tables[name] = {k: row[k] - before[k] for k in self.TABLE_FIELDS}
            out[f"{a_name}->{b_name}"] = {
                "database": database,
                "seq_tup_read": _top(tables, "seq_tup_read", top),
                "n_tup_upd": _top(tables, "n_tup_upd", top),
                "n_tup_ins": _top(tables, "n_tup_ins", top)}
        return out


def _top(tables: dict, field: str, top: int) -> list[dict]:
    ranked = sorted(tables.items(), key=lambda kv: -kv[1][field])[:top]
    return [{"table": name, **row} for name, row in ranked if row[field]]


class Statements:
    """pg_stat_statements of the test's database, if the server has it loaded."""

    def __init__(self, url: str):
        self.url = url
        self.available, self.why = False, ""

    def start(self) -> None:
        import psycopg
        try:
            with psycopg.connect(_plain(self.url), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                conn.execute("SELECT pg_stat_statements_reset()")
            self.available = True
        except Exception as exc:  # noqa: BLE001 - not preloaded: say so in the summary
            self.why = str(exc).strip().splitlines()[0][:200]

    def result(self, top: int = 15) -> dict:
        if not self.available:
            return {"available": False, "why": self.why}
        import psycopg
        try:
            with psycopg.connect(_plain(self.url), autocommit=True) as conn:
                rows = conn.execute("""
                  SELECT query, calls, total_exec_time, rows, shared_blks_read, temp_blks_written
                  FROM pg_stat_statements
                  WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  ORDER BY total_exec_time DESC LIMIT %s""", (top,)).fetchall()
        except Exception as exc:  # noqa: BLE001 - a diagnostic
            return {"available": False, "why": repr(exc)[:200]}
        return {"available": True, "top": [
            {"statement": shape(q, 160), "calls": calls, "total_s": round(ms / 1000, 2),
             "rows": n, "blks_read": read, "temp_blks_written": temp}
            for q, calls, ms, n, read, temp in rows]}


_STARTED = re.compile(r"Worker \S+: (\S+): workers\.jobs\.(\w+)\((.*?)\) \((\S+)\)$")
_ENDED = re.compile(r"(?:Successfully completed|Job OK|.*moved to FailedJobRegistry)")


def job_timeline(logs: list[Path], prefix: str) -> list[dict]:
    """Each job the workers ran: worker, queue (prefix removed), job, arguments, start and
    end (wall-clock seconds; end None if it never finished), from rq's own log lines."""
    jobs = []
    for log in logs:
        current = None
        for line in log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            text = str(event.get("event", ""))
            at = _seconds(event.get("timestamp"))
            started = _STARTED.match(text)
            if started:
                current = {"worker": log.stem, "queue": started.group(1).removeprefix(prefix),
                           "job": started.group(2), "args": started.group(3),
                           "start": at, "end": None}
                jobs.append(current)
            elif current is not None and current["end"] is None and _ENDED.match(text):
                current["end"] = at
    return jobs


def _seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def worker_time(jobs: list[dict], window: tuple[float, float]) -> dict:
    """Worker-seconds spent on each queue's jobs inside `window`, and the run's batch jobs
    (start and end relative to the window's start)."""
    start, end = window
    busy: dict[str, float] = {}
    batches = []
    for job in jobs:
        if job["start"] is None:
            continue
        finished = job["end"] if job["end"] is not None else end
        overlap = min(finished, end) - max(job["start"], start)
        if overlap > 0:
            busy[job["queue"]] = busy.get(job["queue"], 0.0) + overlap
        if job["job"] in ("run_batch", "execute_run") and start - 1 <= job["start"] <= end:
            batches.append({"job": f"{job['job']}({job['args']})", "worker": job["worker"],
                            "start_s": round(job["start"] - start, 1),
                            "end_s": round(finished - start, 1)})
    return {"busy_s_by_queue": {q: round(s, 1) for q, s in sorted(busy.items())},
            "payout_jobs": batches}


class Observed:
    """Everything above for one load test: started at once, stopped once, one summary."""

    def __init__(self, url: str, database: str, prefix: str, out: Path, redis_url: str,
                 queues: list[str]):
        self.out, self.prefix = out, prefix
        self.stats = TableStats(url)
        self.statements = Statements(url)
        self.statements.start()
        self.stats.mark("start")
        self.sampler = DbSampler(url, database, redis_url, [prefix + q for q in queues],
                                 path=out / "pg_activity.json", stats=self.stats,
                                 run_file=out / "run.json")
        self.sampler.start()
        self.stopped = False

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.sampler.halt.set()
        self.sampler.join(timeout=10)
        self.stats.mark("end")
        (self.out / "db_series.json").write_text(json.dumps(self.sampler.series()))

    def result(self, run: dict) -> dict:
        """The summary's `database_activity`, `table_stats`, `statements` and `jobs`."""
        window = None
        if run.get("approved_at"):
            window = (run["approved_at"], run.get("completed_at") or time.time())
        jobs = job_timeline(sorted(self.out.glob("worker-*.log")), self.prefix)
        return {"database_activity": self.sampler.result(window),
                "table_stats": self.stats.deltas(),
                "statements": self.statements.result(),
                "jobs": worker_time(jobs, window) if window else {}}
