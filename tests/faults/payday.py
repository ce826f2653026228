"""A payday as production runs it, for the exactly-once fault cases: the Procfile's
`worker` and `clock` processes (each under `workers.supervise`, on a private redis-server
that a case may kill), the PayPal sandbox over HTTP, and a tenant whose members all take
PayPal. Nobody acts once the run is approved: the clock's watchdog and the supervisor carry
it to the end, or the case fails.

Size: FAULTS_MEMBERS members (default 40: one PayPal batch; `make faults` runs 20,000: two
batches of 15,000 and 5,000)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from sandboxes.paypal import serve
from tests.faults import harness as h
from workers import WORKER_CLASS

MEMBERS = int(os.environ.get("FAULTS_MEMBERS", "40"))
RESULTS = Path(os.environ.get("FAULTS_RESULTS", h.ROOT / "var" / "faults" / "payday.jsonl"))
WATCHDOG_SECONDS = 1  # the clock's tick in these tests (60 in production)


@dataclass
class Payday:
    pg_url: str
    workdir: Path
    members: int = MEMBERS
    sandbox_config: dict = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self):
        self.redis = h.RedisServer(self.workdir)
        self.redis.start()
        self.server, self.sandbox = serve(client_id=h.CLIENT_ID,
                                          client_secret=h.CLIENT_SECRET,
                                          polls_per_step=1)
        if self.sandbox_config:
            h.sandbox_call(self.sandbox, "/_sandbox/config", self.sandbox_config)
        self.prefix = f"payday-{uuid.uuid4().hex[:8]}-"
        self.settings = h.settings_for(self.pg_url, self.redis.url, self.prefix, self.sandbox,
                                       self.workdir / "outbox", payout_poll_seconds=0.2,
                                       payout_max_polls=25)
        self.pool = h.Workers(self.settings, self.sandbox, self.workdir)

    # -- processes ---------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.pool.env(), "SETTLE_WATCHDOG_SECONDS": str(WATCHDOG_SECONDS),
                "SETTLE_PAYPAL_TIMEOUT_SECONDS": "2", **extra}

    def _supervised(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "workers.supervise", "--", *argv],
                                cwd=h.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        proc.log_path = self.workdir / f"{name}.log"  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def start_workers(self, count: int = 2, **env: str) -> None:
        queues = [self.prefix + q for q in ("reports", "payouts", "referrals")]
        for n in range(count):
            self._supervised(f"worker-{len(self.procs) + 1}", [
                str(h.RQ), "worker", "--worker-class", WORKER_CLASS, "--with-scheduler",
                "--dequeue-strategy", "round_robin", "--url", self.redis.url,
                "--name", f"{self.prefix}w{len(self.procs) + 1}", *queues], self.env(**env))

    def start_clock(self) -> None:
        self._supervised("clock", [str(h.RQ), "cron", "workers.cron", "--url",
                                   self.redis.url], self.env())

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log_path.read_text(errors='replace')[-3000:]}"
                         for p in self.procs)

    def close(self) -> None:
        for proc in self.procs:
            h.sigkill_tree(proc)
        self.server.shutdown()
        self.redis.kill()

    # -- the run -------------------------------------------------------------------------

    def scenario(self, approve: bool = True) -> h.Scenario:
        self.scn = h.make_scenario(self.pg_url, members=self.members, failing=2,
                                   approve=approve)
        return self.scn

    def go(self, workers: int = 2, **env: str) -> float:
        """The Procfile's processes up (`workers` supervised workers with `env`, the clock),
        then the approved run started as the approve route starts it."""
        self.start_workers(workers, **env)
        self.start_clock()
        return self.start_run()

    def start_run(self) -> float:
        """What POST .../approve does after the approval commits: enqueue execute_run."""
        from workers.queue import run_job_id
        self.pool.enqueue("execute_run", self.scn.tenant_id, self.scn.run_id,
                          job_id=run_job_id(self.settings, self.scn.tenant_id,
                                            self.scn.run_id))
        self.started = time.monotonic()
        return self.started

    def wait_completed(self, timeout: float | None = None) -> float:
        """Seconds from start_run to the run's completion (fails the case after
        `timeout`, by default scaled with the members)."""
        timeout = timeout or 90 + self.members / 100
        try:
            h.wait_for(lambda: h.run_status(self.scn).startswith("completed"), timeout,
                       "the run to complete with nobody acting", interval=0.2)
        except AssertionError:
            raise AssertionError(f"run {h.run_status(self.scn)}, batches "
                                 f"{h.batch_rows(self.scn)}\n{self.logs()}") from None
        return time.monotonic() - self.started

    def batch_statuses(self) -> list[str]:
        return h.batch_statuses(self.scn)

    def wait_batches(self, predicate, what: str, timeout: float = 60) -> None:
        h.wait_for(lambda: predicate(self.batch_statuses()), timeout, what, interval=0.05)

    def terminate_backends(self, seconds: float) -> int:
        """Terminate every other backend of the test database, again and again, for
        `seconds`. Returns how many were terminated."""
        killed = 0
        deadline = time.monotonic() + seconds
        with h.engine_for(self.pg_url).connect().execution_options(
                isolation_level="AUTOCOMMIT") as conn:
            while time.monotonic() < deadline:
                killed += conn.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name = :app"), {"app": self.pool.appname}).scalar_one()
                time.sleep(0.02)
        return killed

    def record(self, case: str, seconds: float) -> None:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a") as out:
            out.write(json.dumps({"case": case, "members": self.members,
                                  "batches": len(h.batch_rows(self.scn)),
                                  "seconds": round(seconds, 2)}) + "\n")
