"""Locust users that act like the engine's real callers.

- NetworkUploader: an affiliate network's integration. Uploads reports of realistic sizes in
  every supported format and media (generic CSV/JSON/NDJSON/multipart, CJ, Impact, Awin for
  us-cashback; Rakuten for jp-points), polls each report until it is committed, now and then
  re-sends a file it sent before (answered 200, `duplicate: true`) or sends the network's
  correction of it (confirmations, reversals, partial returns).
- Operator: the portal's back office: member balance and statement look-ups, settlement
  run status polling and item pages.
- PayoutOperator (exactly one): at `run_at` seconds into the test, in the middle of the
  upload traffic, plans the payout run (operator key), approves it (approver key: four
  eyes) and follows it until it completes.

Custom metrics, in locust's statistics and CSV beside the HTTP rows (they count units, not
requests, and stay out of the Aggregated row):
- `INGEST lines ingested`: one per committed report line, its "response time" the report's
  upload-to-committed time, so Requests/s is lines ingested per second;
- `INGEST report committed`: one per report, upload-to-committed time;
- `SETTLE members paid`: one per run item that reached its outcome, its "response time" the
  time since approval, so Requests/s is members paid per second and the percentiles say
  how long after approval half, 95%, 99% of members had been paid;
- `SETTLE plan`, `SETTLE approve to completed`: the run's phases.

Configuration: the JSON file named by LOADTEST_CONFIG, written by `python -m loadtests`
(keys, member counts, report size and format mix, timing). The test ends at `duration`
seconds, or, if the run has not completed by then, when it does (at most `max_duration`).
"""
from __future__ import annotations

import itertools
import json
import os
import random
import time
from pathlib import Path

import gevent
from locust import HttpUser, between, constant, events, task
from locust.stats import bucket_response_time

from loadtests.reports import FORMATS, ReportSpec, correction_of, render, request_parts

CONFIG = json.loads(Path(os.environ["LOADTEST_CONFIG"]).read_text()) \
    if os.environ.get("LOADTEST_CONFIG") else {}
RUN = {"id": None, "done": False, "approved_at": None, "started": None}
# Wall-clock points for the plot (loadtests/plot.py): (time, members with an outcome) at each
# poll of the run, and (time, lines) of each committed report. Written at the test's end.
TIMELINE: dict = {"members_paid": [], "lines": []}
_numbers = itertools.count(1)
FINAL_RUN = ("completed", "completed_with_failures", "cancelled")


def log_units(environment, kind: str, name: str, units: int, response_time_ms: float) -> None:
    """Count `units` (lines, members) in the stats row (kind, name) as if each were one
    request of `response_time_ms`. Bulk, so a million members cost one call; the Aggregated
    row (HTTP requests) is left alone."""
    if units <= 0:
        return
    entry = environment.stats.get(name, kind)
    now = time.time()
    entry.log(response_time_ms, 0)
    extra = units - 1
    if extra:
        entry.num_requests += extra
        entry.num_reqs_per_sec[int(now)] += extra
        entry.total_response_time += response_time_ms * extra
        entry.response_times[bucket_response_time(response_time_ms)] += extra


def log_failure(environment, kind: str, name: str, message: str) -> None:
    environment.events.request.fire(request_type=kind, name=name, response_time=0,
                                    response_length=0, exception=RuntimeError(message),
                                    context={})


def _problem(response) -> str:
    """What went wrong: the problem+json body, or the connection error (status 0)."""
    if response.status_code == 0 or response.text is None:
        return repr(getattr(response, "error", None))[:200]
    return response.text[:300]


def _weighted(rng: random.Random, mix: dict):
    keys = list(mix)
    return rng.choices(keys, weights=[mix[k] for k in keys])[0]


def _auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


class NetworkUploader(HttpUser):
    weight = CONFIG.get("uploader_weight", 3)
    wait_time = between(*CONFIG.get("uploader_wait", (1, 4)))

    def on_start(self) -> None:
        self.rng = random.Random()
        self.history: list[ReportSpec] = []  # committed reports this network sent
        self.corrected: set[int] = set()

    # -- tasks ----------------------------------------------------------------------------
    @task(CONFIG.get("task_weights", {}).get("new", 6))
    def new_report(self) -> None:
        fmt = _weighted(self.rng, CONFIG["format_mix"])
        tenant, medias = FORMATS[fmt]
        lines = int(_weighted(self.rng, CONFIG["size_mix"]))
        media = self.rng.choice(medias)
        if lines > CONFIG.get("max_json_lines", 10_000) and media in ("json", "ndjson"):
            media = "csv" if "csv" in medias else media
        spec = ReportSpec(fmt, media, lines, next(_numbers), CONFIG["token"],
                          CONFIG["members"][tenant])
        if self._send(spec, f"POST /v1/reports ({lines} lines)", expect=202):
            self.history.append(spec)
            del self.history[:-20]

    @task(CONFIG.get("task_weights", {}).get("reupload", 1))
    def reupload(self) -> None:
        if not self.history:
            return self.new_report()
        self._send(self.rng.choice(self.history), "POST /v1/reports (re-upload)", expect=200)

    @task(CONFIG.get("task_weights", {}).get("correction", 2))
    def correction(self) -> None:
        todo = [s for s in self.history if s.number not in self.corrected]
        if not todo:
            return self.new_report()
        spec = self.rng.choice(todo)
        self.corrected.add(spec.number)
        self._send(correction_of(spec), "POST /v1/reports (correction)", expect=202)

    # -- helpers --------------------------------------------------------------------------
    def _body(self, spec: ReportSpec) -> bytes:
        if spec.lines <= 5000:
            return render(spec)
        # a large body renders in a thread, so the event loop keeps timing other requests
        return gevent.get_hub().threadpool.spawn(render, spec).get()

    def _send(self, spec: ReportSpec, name: str, expect: int) -> bool:
        tenant = spec.tenant
        key = CONFIG["keys"][tenant]["uploader"]
        body = self._body(spec)
        parts = request_parts(spec, body)
        headers = {**_auth(key), **parts.pop("headers", {})}
        started = time.monotonic()
        with self.client.post(f"/v1/reports?format={spec.format}", headers=headers, name=name,
                              catch_response=True, timeout=300, **parts) as response:
            if response.status_code != expect:
                response.failure(f"{spec.format}/{spec.media}: {response.status_code} "
                                 f"{_problem(response)}")
                return False
            answer = response.json()
            if expect == 200 and not answer.get("duplicate"):
                response.failure("a re-upload was not recognised as a duplicate")
                return False
            response.success()
        if expect == 200:
            return True
        return self._follow(answer["id"], key, spec, started)

    def _follow(self, report_id: int, key: str, spec: ReportSpec, started: float) -> bool:
        """Poll the report until it is committed; count its lines as ingested."""
        deadline = started + CONFIG.get("report_timeout", 600)
        delay = 0.25
        while time.monotonic() < deadline:
            gevent.sleep(delay)
            delay = min(delay * 1.5, 2.0)
            with self.client.get(f"/v1/reports/{report_id}", headers=_auth(key),
                                 name="GET /v1/reports/{id}", catch_response=True,
                                 timeout=60) as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code} {_problem(response)}")
                    return False
                status = response.json()
                if status["status"] == "failed":
                    response.failure(f"report {report_id} ({spec.format}/{spec.media}) failed: "
                                     f"{status.get('errors', [])[:3]}")
                    return False
            if status["status"] == "completed":
                took = (time.monotonic() - started) * 1000
                counts = status["counts"]
                env = self.environment
                log_units(env, "INGEST", "lines ingested", counts["lines"], took)
                log_units(env, "INGEST", "report committed", 1, took)
                TIMELINE["lines"].append((time.time(), counts["lines"]))
                if counts["rejected"]:
                    log_failure(env, "INGEST", "lines rejected",
                                f"report {report_id} ({spec.format}/{spec.media}): "
                                f"{counts['rejected']} rejected: {status.get('errors', [])[:2]}")
                return True
        log_failure(self.environment, "INGEST", "report committed",
                    f"report {report_id} not committed within "
                    f"{CONFIG.get('report_timeout', 600)} s")
        return False


class Operator(HttpUser):
    weight = CONFIG.get("operator_weight", 2)
    wait_time = between(*CONFIG.get("operator_wait", (0.5, 2)))

    def on_start(self) -> None:
        self.rng = random.Random()

    def _member(self, tenant: str = "us-cashback") -> str:
        prefix = "RR" if tenant == "us-cashback" else "HP"
        return f"{prefix}{self.rng.randrange(1, CONFIG['members'][tenant] + 1):06d}"

    @task(10)
    def balance(self) -> None:
        self.client.get(f"/v1/members/{self._member()}/balance",
                        headers=_auth(CONFIG["keys"]["us-cashback"]["operator"]),
                        name="GET /v1/members/{id}/balance", timeout=60)

    @task(1)
    def balance_jp(self) -> None:
        self.client.get(f"/v1/members/{self._member('jp-points')}/balance",
                        headers=_auth(CONFIG["keys"]["jp-points"]["operator"]),
                        name="GET /v1/members/{id}/balance", timeout=60)

    @task(2)
    def statement(self) -> None:
        self.client.get(f"/v1/members/{self._member()}/statement",
                        headers=_auth(CONFIG["keys"]["us-cashback"]["operator"]),
                        name="GET /v1/members/{id}/statement", timeout=60)

    @task(2)
    def run_status(self) -> None:
        if RUN["id"] is None:
            return
        self.client.get(f"/v1/settlement-runs/{RUN['id']}",
                        headers=_auth(CONFIG["keys"]["us-cashback"]["operator"]),
                        name="GET /v1/settlement-runs/{id}", timeout=60)

    @task(1)
    def run_items(self) -> None:
        if RUN["id"] is None:
            return
        status = self.rng.choice([None, "succeeded", "submitted", "reserved"])
        query = "?limit=100" + (f"&status={status}" if status else "")
        self.client.get(f"/v1/settlement-runs/{RUN['id']}/items{query}",
                        headers=_auth(CONFIG["keys"]["us-cashback"]["operator"]),
                        name="GET /v1/settlement-runs/{id}/items", timeout=60)


class PayoutOperator(HttpUser):
    """Plans, approves and follows the payout run, in the middle of the upload traffic."""
    fixed_count = 1
    wait_time = constant(1)

    def on_start(self) -> None:
        self.state = "waiting"
        self.seen = 0

    @task
    def step(self) -> None:
        if self.state == "waiting":
            started = RUN["started"] or time.monotonic()
            if time.monotonic() - started >= CONFIG.get("run_at", 15):
                self._plan_and_approve()
        elif self.state == "executing":
            self._follow()

    def _plan_and_approve(self) -> None:
        keys = CONFIG["keys"]["us-cashback"]
        self.state = "failed"
        t0 = time.monotonic()
        with self.client.post("/v1/settlement-runs", json={"payout_date": CONFIG["payout_date"]},
                              headers=_auth(keys["operator"]), name="POST /v1/settlement-runs",
                              catch_response=True, timeout=600) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code} {_problem(response)}")
                return
            run = response.json()
        log_units(self.environment, "SETTLE", "plan", 1, (time.monotonic() - t0) * 1000)
        RUN["id"], RUN["items"] = run["id"], run["totals"]["members"]
        RUN["planned"] = run
        with self.client.post(f"/v1/settlement-runs/{run['id']}/approve",
                              json={"plan_hash": run["plan_hash"]},
                              headers=_auth(keys["approver"]),
                              name="POST /v1/settlement-runs/{id}/approve",
                              catch_response=True, timeout=600) as response:
            if response.status_code != 202:
                response.failure(f"{response.status_code} {_problem(response)}")
                return
        RUN["approved_at"] = time.monotonic()
        RUN["approved_wall"] = time.time()
        TIMELINE["approved_at"], TIMELINE["items"] = RUN["approved_wall"], RUN["items"]
        RUN["plan_s"] = round(RUN["approved_at"] - t0, 2)
        self.state = "executing"
        _write_run({"run_id": run["id"], "items": run["totals"]["members"],
                    "skipped": run["skipped"], "by_method": run["totals"]["by_method"],
                    "plan_s": round(RUN["approved_at"] - t0, 2),
                    "approved_at": RUN["approved_wall"], "status": "executing"})

    def _follow(self) -> None:
        keys = CONFIG["keys"]["us-cashback"]
        with self.client.get(f"/v1/settlement-runs/{RUN['id']}", headers=_auth(keys["operator"]),
                             name="GET /v1/settlement-runs/{id}", catch_response=True,
                             timeout=60) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {_problem(response)}")
                return
            run = response.json()
        progress = run["progress"]
        finished = progress["done"] + progress["failed"]
        since = (time.monotonic() - RUN["approved_at"]) * 1000
        log_units(self.environment, "SETTLE", "members paid", finished - self.seen, since)
        TIMELINE["members_paid"].append((time.time(), finished))
        self.seen = finished
        if run["status"] in FINAL_RUN:
            log_units(self.environment, "SETTLE", "approve to completed", 1, since)
            RUN["done"] = True
            self.state = "done"
            _write_run({"run_id": run["id"], "items": progress["items"],
                        "done": progress["done"], "failed": progress["failed"],
                        "by_status": progress.get("by_status"), "status": run["status"],
                        "skipped": run["skipped"], "by_method": run["totals"]["by_method"],
                        "plan_s": RUN.get("plan_s"), "approved_at": RUN["approved_wall"],
                        "completed_at": time.time(), "execute_s": round(since / 1000, 2),
                        "members_per_s": round(finished / (since / 1000), 1)})


@events.test_stop.add_listener
def _write_timeline(**_kw) -> None:
    path = CONFIG.get("timeline")
    if path:
        Path(path).write_text(json.dumps(TIMELINE))


def _write_run(data: dict) -> None:
    path = CONFIG.get("run_summary")
    if path:
        Path(path).write_text(json.dumps(data, indent=2))


@events.test_start.add_listener
def _started(environment, **_kw) -> None:
    RUN["started"] = time.monotonic()
    if not CONFIG:
        return

    def stopper():
        gevent.sleep(CONFIG["duration"])
        while not RUN["done"] and time.monotonic() - RUN["started"] < CONFIG["max_duration"]:
            gevent.sleep(1)
        if not RUN["done"]:
            log_failure(environment, "SETTLE", "approve to completed",
                        f"the run did not complete within {CONFIG['max_duration']} s")
        environment.runner.quit()

    gevent.spawn(stopper)
