"""Under gunicorn (with the repository's gunicorn.conf.py) every line on stderr and stdout
is JSON: gunicorn's own, the app's access log with the request id, nothing else."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, headers: dict) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(urllib.request.Request(url, headers=headers), timeout=5) as response:
        return response.status


def test_gunicorn_and_the_app_log_only_json_lines_with_the_request_id(tmp_path, sqlite_url):
    port = _free_port()
    env = {**os.environ, "SETTLE_DATABASE_URL": sqlite_url}
    env.pop("SETTLE_REDIS_URL", None)
    process = subprocess.Popen(
        [str(GUNICORN), "--workers", "1", "--bind", f"127.0.0.1:{port}", "api:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for attempt in range(100):  # the worker boots; each try has an id of its own
            try:
                answered = f"gu-{attempt}"
                status = _get(f"http://127.0.0.1:{port}/v1/health", {"X-Request-ID": answered})
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("gunicorn did not answer")
        assert status == 200
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=20)
    lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is JSON
    assert any(p["logger"] == "gunicorn.error" for p in parsed)
    access = [p for p in parsed if p["logger"] == "settle.access"]
    assert [a["path"] for a in access if a["request_id"] == answered] == ["/v1/health"]
