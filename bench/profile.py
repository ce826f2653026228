"""Profiles of the hot paths, in-process on PostgreSQL: where does the time of one figure go?

    python -m bench.profile [--lines 100000] [--members 100000] [--out bench/results]

- ingest: `reports.process` of one generic report of N lines (what the rq job runs, after
  the upload was stored);
- settle: plan, approve and execute a run of M members in-process (batches one after the
  other, PayPal through its sandbox in a thread, points partners answered in between).

For each: the wall time split by SQL statement (SQLAlchemy cursor events: time inside the
database round trip, per statement shape) and the Python profile (cProfile, the calling
thread; top functions by own and by cumulative time). Writes profile-ingest.txt and
profile-settle.txt.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import subprocess
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event

from bench.common import ROOT, create_database, drop_database


class SqlTimer:
    """Time spent inside each statement shape (literals and parameters folded)."""

    def __init__(self):
        self.total = defaultdict(float)
        self.calls = defaultdict(int)
        self._start = {}

    @staticmethod
    def shape(statement: str) -> str:
        flat = re.sub(r"\s+", " ", statement).strip()
        flat = re.sub(r"%\(\w+\)s|\$\d+|'[^']*'|\b\d+\b", "?", flat)
        return flat[:150]

    def attach(self, engine) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def before(conn, cursor, statement, parameters, context, executemany):
            conn.info.setdefault("bench_t0", []).append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn, cursor, statement, parameters, context, executemany):
            started = conn.info["bench_t0"].pop()
            key = self.shape(statement)
            self.total[key] += time.perf_counter() - started
            self.calls[key] += 1

    def report(self, wall: float, top: int = 15) -> str:
        rows = sorted(self.total.items(), key=lambda kv: -kv[1])
        sql_total = sum(self.total.values())
        out = [f"wall {wall:.2f} s; inside SQL statements {sql_total:.2f} s "
               f"({100 * sql_total / wall:.0f}%), {sum(self.calls.values())} statements",
               f"{'seconds':>8} {'share':>6} {'calls':>6}  statement"]
        for key, seconds in rows[:top]:
            out.append(f"{seconds:8.3f} {100 * seconds / wall:5.1f}% {self.calls[key]:6d}  {key}")
        return "\n".join(out)


@contextmanager
def profiled(engine, title: str, sink: list[str]):
    timer = SqlTimer()
    timer.attach(engine)
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        wall = time.perf_counter() - start
        stream = io.StringIO()
        stats = pstats.Stats(profile, stream=stream)
        stats.sort_stats("tottime").print_stats(25)
        by_own = stream.getvalue()
        stream = io.StringIO()
        pstats.Stats(profile, stream=stream).sort_stats("cumulative").print_stats(30)
        sink.append(f"== {title}\n\n-- SQL statements by time\n{timer.report(wall)}\n\n"
                    f"-- Python, by own time (tottime)\n{_trim(by_own)}\n"
                    f"-- Python, by cumulative time\n{_trim(stream.getvalue())}\n")


def _trim(text: str) -> str:
    """pstats output without its preamble, paths shortened to the project or package."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    root = str(ROOT) + "/"
    return "\n".join(re.sub(r"\S*/site-packages/", "", line).replace(root, "")
                     for line in lines[start:]) + "\n"


def profile_ingest(lines: int, members: int) -> str:
    from bench.ingest import _seed, generate_report
    from settlement.db import make_engine, tenant_session
    from settlement.reports import service as reports

    workdir = ROOT / "var" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    name, url = create_database()
    sink: list[str] = []
    try:
        _, tenant_id = _seed(url, members, workdir)
        path = workdir / f"profile_{lines}.csv"
        generate_report(path, lines, members)
        engine = make_engine(url)
        with tenant_session(engine, tenant_id) as session:
            with path.open("rb") as body:
                received = reports.receive(session, tenant_id, "generic", "csv",
                                           iter(lambda: body.read(1 << 20), b""),
                                           uploaded_by="bench", max_bytes=1 << 31)
            session.commit()
        path.unlink()
        with profiled(engine, f"ingest: process one generic report of {lines:,} lines "
                              f"({members:,} members)", sink):
            report = reports.process(engine, tenant_id, received.report_id)
        sink.append(f"report {report.id}: {report.status}, inserted {report.inserted:,}\n")
        engine.dispose()
    finally:
        drop_database(name)
    return "\n".join(sink)


def profile_settle(members: int) -> str:
    import datetime as dt

    from bench.settle import _seed
    from settlement.config import Settings
    from settlement.db import make_engine, tenant_session
    from settlement.payouts.registry import adapter_for
    from sandboxes.partners import respond, unanswered
    from sandboxes.paypal import serve
    from settlement.runs import execute, plan as runs

    name, url = create_database()
    outbox = ROOT / "var" / "bench" / "profile-outbox"
    subprocess.run(["rm", "-rf", str(outbox)], check=False)
    sandbox, paypal_url = serve(client_id="bench", client_secret="bench", polls_per_step=0)
    sink: list[str] = []
    try:
        tenant_id = _seed(url, members)
        engine = make_engine(url)
        settings = Settings(database_url=url, paypal_base_url=paypal_url,
                            paypal_client_id="bench", paypal_client_secret="bench",
                            outbox_dir=str(outbox))
        adapters = lambda method: adapter_for(method, settings)  # noqa: E731
        with profiled(engine, f"settle: plan {members:,} members", sink):
            with tenant_session(engine, tenant_id) as session:
                run_id = runs.plan_run(session, tenant_id, dt.date(2026, 11, 15), "bench:p").id
                session.commit()
        with tenant_session(engine, tenant_id) as session:
            runs.approve_run(session, tenant_id, run_id, "bench:a")
            session.commit()
        with profiled(engine, f"settle: execute {members:,} members in-process (submit every "
                              "batch, poll PayPal, write partner files)", sink):
            execute.execute_run(engine, tenant_id, run_id, adapters, str(outbox),
                                poll_interval=0.05, max_polls=100)
        for folder, partner, key in unanswered(outbox):
            respond(folder, partner, key)
        with profiled(engine, "settle: collect the points partners' answers", sink):
            execute.execute_run(engine, tenant_id, run_id, adapters, str(outbox),
                                poll_interval=0.05, max_polls=100)
        with tenant_session(engine, tenant_id) as session:
            sink.append(f"run {run_id}: {runs.get_run(session, tenant_id, run_id).status}, "
                        f"{runs.run_totals(session, tenant_id, run_id)['progress']}\n")
        engine.dispose()
    finally:
        sandbox.shutdown()
        drop_database(name)
        subprocess.run(["rm", "-rf", str(outbox)], check=False)
    return "\n".join(sink)


def run(lines: int, members: int, out: Path, ingest_members: int = 100_000) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if lines:
        path = out / "profile-ingest.txt"
        path.write_text(profile_ingest(lines, ingest_members))
        written.append(path)
    if members:
        path = out / "profile-settle.txt"
        path.write_text(profile_settle(members))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000, help="0: skip ingestion")
    parser.add_argument("--members", type=int, default=100_000, help="0: skip settlement")
    parser.add_argument("--ingest-members", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    for path in run(args.lines, args.members, args.out, args.ingest_members):
        print(f"written {path}")


if __name__ == "__main__":
    main()
