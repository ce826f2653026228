"""Helpers for the fault-injection tests of settlement runs: a tenant whose payable members
all take PayPal, a PayPal sandbox per test, real `rq worker` subprocesses (killed, whole
process tree, in `finally`), an optional private redis-server, bounded waits, and the
exactly-once invariants every test ends with."""
from __future__ import annotations

import collections
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.catalog.service import MemberBatch, check_member, upsert_members
from settlement.config import Settings
from settlement.db import engine_for
from settlement.runs import plan as runs
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import apply_policy
from tests.conftest import generic_csv, policy_document
from tests.domain.helpers import add_retailer, add_rule, ingest
from workers import WORKER_CLASS

ROOT = Path(__file__).parents[2]
RQ = Path(sys.executable).parent / "rq"
PAYOUT = dt.date(2026, 11, 15)
BEFORE = dt.datetime(2026, 11, 10, 18, tzinfo=dt.timezone.utc)
CLIENT_ID = "faults-client"
CLIENT_SECRET = "faults-secret"
ADDRESS = {"address_line1": "1 Main St", "city": "Savannah", "region": "GA",
           "postal_code": "31401", "country": "US"}  # the policy requires one for any method
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --------------------------------------------------------------------------------------
# Waiting and processes


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc; the rq work horse is one, in its own process
    group)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode("ascii", "replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry))
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def sigkill_tree(proc: subprocess.Popen) -> list[int]:
    """SIGKILL a process and every descendant (deepest first), as a dying container or the
    OOM killer would. Only processes this test started. Returns the pids killed."""
    if proc.poll() is not None:
        return []
    victims = descendants(proc.pid)
    for pid in reversed(victims):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    # Reap nothing else: the orphaned horses were re-parented to init.
    return [proc.pid, *victims]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------
# The sandbox


@contextmanager
def paypal_sandbox(polls_per_step: int = 1):
    """The PayPal sandbox on a free port for one test: yields its base URL."""
    from sandboxes.paypal import serve
    server, url = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                        polls_per_step=polls_per_step)
    try:
        yield url
    finally:
        server.shutdown()


def sandbox_call(base_url: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=10) as response:
        return json.loads(response.read())


def sandbox_faults(base_url: str, *faults: dict) -> dict:
    return sandbox_call(base_url, "/_sandbox/faults", {"next": list(faults)})


def sandbox_batches(base_url: str) -> list[dict]:
    return sandbox_call(base_url, "/_sandbox/batches")["batches"]


# --------------------------------------------------------------------------------------
# The scenario: tenant, members, confirmed balances, an approved run


@dataclass
class Scenario:
    pg_url: str
    tenant_id: int
    slug: str
    run_id: int
    emails: dict[str, str]  # external id -> PayPal email
    failing: set[str]  # emails the sandbox fails
    before: dict[str, dict[str, int]]  # external id -> balances before execution
    planned: dict[str, int] = field(default_factory=dict)  # external id -> planned amount

    @property
    def engine(self):
        return engine_for(self.pg_url)


def make_scenario(pg_url: str, members: int = 30, failing: int = 2,
                  approve: bool = True, unclaimed: int = 0) -> Scenario:
    """A USD tenant with `members` PayPal members with confirmed balances (the last
    `failing` of them with `+fail` addresses, which the sandbox fails, and the `unclaimed`
    before those with `+unclaimed` ones, which it leaves UNCLAIMED), planned and (unless
    `approve` is false) approved by two principals for PAYOUT."""
    engine = engine_for(pg_url)
    slug = f"t-{uuid.uuid4().hex[:10]}"
    policy = TenantPolicy.model_validate(policy_document(slug))
    with Session(engine) as session:
        tenant, _ = apply_policy(session, policy)
        session.commit()
        tenant_id = tenant.id

    class _T:  # what tests.domain.helpers expect of a tenant
        id = tenant_id
        currency = "USD"
    handle = _T()
    add_retailer(engine, handle, "macys")
    add_rule(engine, handle, retailer="macys", kind="percent_of_sale", rate="10")
    emails, fail = {}, set()
    with Session(engine) as session:
        batch = MemberBatch()
        for n in range(1, members + 1):
            external = f"m{n:03d}"
            local = f"{slug}-{external}" + (
                "+fail" if n > members - failing else
                "+unclaimed" if n > members - failing - unclaimed else "")
            emails[external] = f"{local}@example.com"
            if n > members - failing:
                fail.add(emails[external])
            check_member(n, {"external_id": external, "name": f"Member {n}",
                             "payout_method": "paypal", "paypal_email": emails[external],
                             **ADDRESS},
                         batch, dt.date(2026, 11, 24))
        assert not batch.errors, batch.errors
        upsert_members(session, tenant_id, "USD", batch, "faults")
        session.commit()
    lines = [f"t-{m},o-{m},{m},macys,,2026-10-01,{60 + n}.{n % 100:02d},"
             f"{60 + n}.{n % 100:02d},USD,confirmed"
             for n, m in enumerate(emails, start=1)]
    ingest(engine, handle, generic_csv(*lines), as_of=BEFORE)
    with Session(engine) as session:
        run = runs.plan_run(session, tenant_id, PAYOUT, "key:planner")
        session.commit()
        run_id = run.id
        if approve:
            runs.approve_run(session, tenant_id, run_id, "key:approver")
            session.commit()
    scn = Scenario(pg_url, tenant_id, slug, run_id, emails, fail, member_balances(pg_url,
                                                                                  tenant_id))
    with engine.connect() as conn:
        scn.planned = dict(conn.execute(text(
            "SELECT m.external_id, i.amount FROM run_items i JOIN members m "
            "ON m.tenant_id = i.tenant_id AND m.id = i.member_id "
            "WHERE i.tenant_id = :t AND i.run_id = :r"), {"t": tenant_id, "r": run_id}).all())
    assert set(scn.planned) == set(emails), "every member is planned"
    assert all(scn.before[m]["available"] == scn.planned[m] > 0 for m in emails)
    return scn


def member_balances(pg_url: str, tenant_id: int) -> dict[str, dict[str, int]]:
    with engine_for(pg_url).connect() as conn:
        rows = conn.execute(text(
            "SELECT m.external_id, p.account, sum(p.amount) FROM members m "
            "LEFT JOIN postings p ON p.tenant_id = m.tenant_id AND p.member_id = m.id "
            "WHERE m.tenant_id = :t GROUP BY m.external_id, p.account"),
            {"t": tenant_id}).all()
    out: dict[str, dict[str, int]] = collections.defaultdict(
        lambda: {"pending": 0, "available": 0, "reserved": 0, "paid": 0})
    for external, account, total in rows:
        if account is not None:
            out[external][account] = int(total)
        else:
            out[external]  # noqa: B018 - a member without postings
    return dict(out)


def batch_rows(scn: Scenario) -> list[tuple]:
    with scn.engine.connect() as conn:
        return conn.execute(text(
            "SELECT id, status, idempotency_key, provider_batch_id, attempts FROM run_batches "
            "WHERE tenant_id = :t AND run_id = :r ORDER BY id"),
            {"t": scn.tenant_id, "r": scn.run_id}).all()


def batch_statuses(scn: Scenario) -> list[str]:
    return [row.status for row in batch_rows(scn)]


def run_status(scn: Scenario) -> str:
    with scn.engine.connect() as conn:
        return conn.execute(text(
            "SELECT status FROM settlement_runs WHERE tenant_id = :t AND id = :r"),
            {"t": scn.tenant_id, "r": scn.run_id}).scalar_one()


def ledger_snapshot(scn: Scenario) -> dict:
    with scn.engine.connect() as conn:
        entries = conn.execute(text(
            "SELECT id, idempotency_key FROM journal_entries WHERE tenant_id = :t ORDER BY id"),
            {"t": scn.tenant_id}).all()
        postings = conn.execute(text(
            "SELECT count(*), coalesce(sum(abs(amount)), 0) FROM postings WHERE tenant_id = :t"),
            {"t": scn.tenant_id}).one()
        items = conn.execute(text(
            "SELECT id, status, provider_item_id, provider_status FROM run_items "
            "WHERE tenant_id = :t AND run_id = :r ORDER BY id"),
            {"t": scn.tenant_id, "r": scn.run_id}).all()
    return {"entries": [tuple(e) for e in entries], "postings": tuple(postings),
            "items": [tuple(i) for i in items],
            "batches": [tuple(b) for b in batch_rows(scn)], "run": run_status(scn)}


# --------------------------------------------------------------------------------------
# The invariants


def assert_paid_exactly_once(scn: Scenario, sandbox_url: str) -> None:
    """Every planned member was paid exactly once at PayPal (no receiver twice, the planned
    amount); our items are succeeded (failed where the sandbox fails them); balances:
    paid == planned (or back in available), reserved == 0; every journal entry balances;
    no member has two 'paid' postings."""
    # The provider's side.
    ours = [b for b in sandbox_batches(sandbox_url)
            if (b["sender_batch_id"] or "").startswith(f"{scn.slug}-run{scn.run_id}-")]
    by_receiver = collections.Counter(i["receiver"] for b in ours for i in b["items"])
    twice = {r: n for r, n in by_receiver.items() if n != 1}
    assert not twice, f"receivers paid more than once at PayPal: {twice}"
    assert set(by_receiver) == set(scn.emails.values()), \
        f"PayPal batches miss {set(scn.emails.values()) - set(by_receiver)}"
    sent = {i["receiver"]: Decimal(i["amount"]["value"]) for b in ours for i in b["items"]}
    for external, email in scn.emails.items():
        assert sent[email] == Decimal(scn.planned[external]) / 100, external
    keys = collections.Counter(b["sender_batch_id"] for b in ours)
    assert all(n == 1 for n in keys.values()), f"a sender_batch_id twice at PayPal: {keys}"

    # Our side.
    with scn.engine.connect() as conn:
        items = dict(conn.execute(text(
            "SELECT m.external_id, i.status FROM run_items i JOIN members m "
            "ON m.tenant_id = i.tenant_id AND m.id = i.member_id "
            "WHERE i.tenant_id = :t AND i.run_id = :r"),
            {"t": scn.tenant_id, "r": scn.run_id}).all())
        unbalanced = conn.execute(text(
            "SELECT entry_id, sum(amount) FROM postings GROUP BY entry_id "
            "HAVING sum(amount) <> 0")).all()
        paid_twice = conn.execute(text(
            "SELECT member_id, count(DISTINCT entry_id) FROM postings WHERE tenant_id = :t "
            "AND account = 'paid' GROUP BY member_id HAVING count(DISTINCT entry_id) <> 1"),
            {"t": scn.tenant_id}).all()
        open_batches = conn.execute(text(
            "SELECT id, status FROM run_batches WHERE tenant_id = :t AND run_id = :r "
            "AND status <> 'completed'"), {"t": scn.tenant_id, "r": scn.run_id}).all()
    expected = {m: ("failed" if e in scn.failing else "succeeded") for m, e in scn.emails.items()}
    assert items == expected
    assert not open_batches, open_batches
    assert run_status(scn) == ("completed_with_failures" if scn.failing else "completed")
    assert unbalanced == [], f"journal entries that do not balance: {unbalanced}"
    assert paid_twice == [], f"members with other than one 'paid' entry: {paid_twice}"
    after = member_balances(scn.pg_url, scn.tenant_id)
    for external, email in scn.emails.items():
        planned, before = scn.planned[external], scn.before[external]
        if email in scn.failing:
            want = {**before, "paid": 0, "reserved": 0}
        else:
            want = {**before, "available": before["available"] - planned,
                    "reserved": 0, "paid": planned}
        assert after[external] == want, (external, after[external], want)


# --------------------------------------------------------------------------------------
# rq workers (real subprocesses) and a private redis-server


@dataclass
class Workers:
    """Starts `rq worker` subprocesses for one scenario; `close()` kills what is left."""

    settings: Settings
    sandbox_url: str
    log_dir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    jobs: set[str] = field(default_factory=set)

    @property
    def appname(self) -> str:
        return f"{self.settings.queue_prefix}worker"

    def env(self) -> dict[str, str]:
        s = self.settings
        return {**os.environ,
                "SETTLE_DATABASE_URL": s.database_url, "SETTLE_REDIS_URL": s.redis_url,
                "SETTLE_QUEUE_PREFIX": s.queue_prefix,
                "SETTLE_PAYPAL_BASE_URL": self.sandbox_url,
                "SETTLE_PAYPAL_CLIENT_ID": CLIENT_ID,
                "SETTLE_PAYPAL_CLIENT_SECRET": CLIENT_SECRET,
                "SETTLE_PAYOUT_POLL_SECONDS": str(s.payout_poll_seconds),
                "SETTLE_PAYOUT_MAX_POLLS": str(s.payout_max_polls),
                "SETTLE_OUTBOX_DIR": s.outbox_dir,
                "SETTLE_LOG_LEVEL": "INFO",
                # libpq names the worker's connections, so a test can tell them apart.
                "PGAPPNAME": self.appname,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                            os.environ.get("PYTHONPATH")]))}

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """`rq worker ARGS` on this scenario's payouts queue (its own session and log);
        `env` adds variables (SETTLE_FAILPOINT, ...)."""
        n = len(self.procs) + 1
        name = f"{self.settings.queue_prefix}worker-{n}-{uuid.uuid4().hex[:6]}"
        log = open(self.log_dir / f"worker-{n}.log", "wb")
        proc = subprocess.Popen(
            [str(RQ), "worker", "--worker-class", WORKER_CLASS, "--url", self.settings.redis_url,
             "--name", name, *args,
             f"{self.settings.queue_prefix}payouts"],
            cwd=ROOT, env={**self.env(), **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        proc.log_path = self.log_dir / f"worker-{n}.log"  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def burst(self, *args: str, timeout: float = 30,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run a burst worker to the end (killed, and failing the test, after `timeout`)."""
        proc = self.start("--burst", *args, env=env)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            sigkill_tree(proc)
            raise AssertionError(f"burst worker still running after {timeout}s:\n"
                                 + self.log(proc))
        return proc

    @staticmethod
    def log(proc) -> str:
        return proc.log_path.read_text(errors="replace")[-6000:]

    def enqueue(self, job: str, *args, job_id: str | None = None):
        from workers.queue import enqueue
        job_id = job_id or f"{self.settings.queue_prefix}{job}-{uuid.uuid4().hex[:8]}"
        self.jobs.add(job_id)
        return enqueue(job, *args, settings=self.settings, job_id=job_id)

    def close(self) -> None:
        for proc in self.procs:
            sigkill_tree(proc)


class RedisServer:
    """A private redis-server (no persistence) that a test may kill and restart; never
    the machine's shared one."""

    def __init__(self, workdir: Path):
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        log = open(self.workdir / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        from redis import Redis

        def up():
            try:
                client = Redis.from_url(self.url, socket_connect_timeout=0.2)
                try:
                    return client.ping()
                finally:
                    client.close()
            except Exception:  # noqa: BLE001 - not listening yet
                return False
        wait_for(up, 10, f"redis-server on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()


# --------------------------------------------------------------------------------------
# Keys of a queue prefix on the shared Redis


def clean_rq_keys(redis_url: str, prefix: str, job_ids=()) -> None:
    """Delete every key this prefix left in Redis (queues, jobs, registries, workers)."""
    from redis import Redis
    redis = Redis.from_url(redis_url)
    try:
        doomed = set(redis.scan_iter(match=f"rq:*{prefix}*"))
        for job_id in job_ids:
            doomed |= set(redis.scan_iter(match=f"rq:*{job_id}*"))
        if doomed:
            redis.delete(*doomed)
        for shared in ("rq:queues", "rq:workers"):
            ours = [m for m in redis.smembers(shared) if prefix.encode() in m]
            if ours:
                redis.srem(shared, *ours)
    finally:
        redis.close()


def settings_for(pg_url: str, redis_url: str | None, prefix: str, sandbox_url: str,
                 outbox: Path, **overrides) -> Settings:
    values = dict(database_url=pg_url, redis_url=redis_url, queue_prefix=prefix,
                  paypal_base_url=sandbox_url, paypal_client_id=CLIENT_ID,
                  paypal_client_secret=CLIENT_SECRET, outbox_dir=str(outbox),
                  payout_poll_seconds=0.2, payout_max_polls=60)
    values.update(overrides)
    return Settings(**values)
