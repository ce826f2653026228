"""What the benchmarks and the load test share: a throwaway PostgreSQL database, free ports,
starting and stopping the processes they run, and the peak memory of a process tree.

Everything here talks to 127.0.0.1 only. A database is created per run and dropped after
it; Redis keys live under the run's own prefix and are deleted after it.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0,
                  what: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def _admin():
    return create_engine(ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                         isolation_level="AUTOCOMMIT")


def create_database(prefix: str = "settle_bench") -> tuple[str, str]:
    """A fresh database; returns (name, postgresql:// URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def clean_redis(url: str, prefix: str) -> int:
    """Delete every key of this run (rq keys carry the queue prefix in their names) and its
    entries in rq's shared registries (the sets rq:queues and rq:workers)."""
    from redis import Redis
    redis = Redis.from_url(url)
    keys = list(redis.scan_iter(f"*{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        redis.delete(*keys[i:i + 500])
    for shared in ("rq:queues", "rq:workers"):
        if redis.type(shared) == b"set":
            mine = [m for m in redis.smembers(shared) if prefix.encode() in m]
            if mine:
                redis.srem(shared, *mine)
    redis.close()
    return len(keys)


def code_version() -> dict:
    """The commit measured, and whether the work tree differed from it (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return {"commit": head, "modified_files": len(dirty.splitlines())}
    except (OSError, subprocess.SubprocessError):
        return {}


def stop(procs: list[subprocess.Popen], timeout: float = 30.0) -> None:
    """SIGTERM each process we started, wait, then SIGKILL what is left (by pid, never by
    name). Processes started with start_new_session get the signal as a group, so that
    their children (gunicorn's and rq's workers) go too."""
    for proc in procs:
        if proc.poll() is None:
            _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL)
            proc.wait(timeout=10)
    # What outlived its parent in a group we made (an rq work horse still in a job, a
    # scheduler): gone too, so nothing writes to the database or Redis after cleanup.
    for proc in procs:
        if getattr(proc, "own_group", False):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        if getattr(proc, "own_group", False):
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass


def spawn(args: list[str], env: dict, log: Path | None = None, cwd: Path = ROOT,
          group: bool = True) -> subprocess.Popen:
    """Start a process in its own process group (so stop() reaches its children), its output
    to `log` (or inherited)."""
    out = open(log, "ab") if log else None
    try:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT if out else None,
                                start_new_session=group)
    finally:
        if out:
            out.close()
    proc.own_group = group  # type: ignore[attr-defined]
    return proc


def descendants(pid: int) -> list[int]:
    """pid's children, grandchildren, ... (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in children:
                found.append(int(child))
                todo.append(int(child))
    return found


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith(field):
                return int(row.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_mb(pid: int) -> float:
    """The process's own peak resident set (VmHWM), MB."""
    kb = _status_kb(pid, "VmHWM:")
    return float("nan") if kb is None else kb / 1024


class MemorySampler:
    """Samples, every `interval` s, the process trees under `roots` (name -> pid): the peak
    resident set of any single process in each tree (VmHWM, so a peak between two samples
    is not missed while the process lives) and the peak of the tree's summed RSS.

    rq's forking worker runs each job in a short-lived child (the work horse); sampling the
    tree catches it, where the worker's own VmHWM would not."""

    def __init__(self, roots: dict[str, int], interval: float = 0.1):
        self.roots, self.interval = dict(roots), interval
        self.process_peak_kb = {name: 0 for name in roots}
        self.tree_peak_kb = {name: 0 for name in roots}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def add(self, name: str, pid: int) -> None:
        self.roots[name] = pid
        self.process_peak_kb.setdefault(name, 0)
        self.tree_peak_kb.setdefault(name, 0)

    def sample(self) -> None:
        for name, root in list(self.roots.items()):
            total = 0
            for pid in [root, *descendants(root)]:
                hwm = _status_kb(pid, "VmHWM:") or 0
                rss = _status_kb(pid, "VmRSS:") or 0
                self.process_peak_kb[name] = max(self.process_peak_kb[name], hwm)
                total += rss
            self.tree_peak_kb[name] = max(self.tree_peak_kb[name], total)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def result(self) -> dict:
        return {name: {"peak_process_mb": round(self.process_peak_kb[name] / 1024, 1),
                       "peak_tree_mb": round(self.tree_peak_kb[name] / 1024, 1)}
                for name in self.roots}


def machine() -> dict:
    """What the figures were measured on."""
    import platform
    info = {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                info["cpu"] = row.split(":", 1)[1].strip()
                break
        for row in Path("/proc/meminfo").read_text().splitlines():
            if row.startswith("MemTotal:"):
                info["memory_gb"] = round(int(row.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        out = subprocess.run(["psql", ADMIN_URL, "-Atc", "SHOW server_version"],
                             capture_output=True, text=True, timeout=10)
        info["postgresql"] = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from redis import Redis
        info["redis"] = Redis.from_url("redis://127.0.0.1:6379/0").info("server")["redis_version"]
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


def seed_available_balances(session, tenant_id: int, currency: str, base: int,
                            memo: str) -> None:
    """One seed entry giving every member of the tenant `base` + a spread of up to 9,999
    minor units in `available`, against the networks' receivable (balanced)."""
    from sqlalchemy import text
    entry = session.execute(text(
        "INSERT INTO journal_entries (tenant_id, idempotency_key, kind, memo) "
        "VALUES (:t, 'bench:seed', 'seed', :memo) RETURNING id"),
        {"t": tenant_id, "memo": memo}).scalar_one()
    session.execute(text("""
      INSERT INTO postings (tenant_id, entry_id, account, member_id, currency, amount)
      SELECT :t, :e, 'available', id, :cur, :base + (id * 7919) % 10000 FROM members
       WHERE tenant_id = :t
      UNION ALL
      SELECT :t, :e, 'network_receivable', NULL, :cur,
             -(SELECT sum(:base + (id * 7919) % 10000) FROM members WHERE tenant_id = :t)"""),
                    {"t": tenant_id, "e": entry, "cur": currency, "base": base})


def analyze_and_dispose(engine) -> None:
    """Fresh statistics for the seeded tables (autovacuum may be off), then close."""
    from sqlalchemy import text
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    engine.dispose()
