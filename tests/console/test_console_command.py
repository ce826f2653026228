"""`settle demo console` (make console): serves the console over the configured database,
prints its URL and a key per role of every tenant, and a person can sign in with them."""
from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from tests.console.helpers import csrf_of

ROOT = Path(__file__).parents[2]
SETTLE = Path(sys.executable).parent / "settle"


def _read_until_url(process) -> tuple[str, dict[str, str]]:
    keys, lines = {}, []
    for line in process.stdout:
        lines.append(line)
        found = re.match(r"\s+(operator|approver|uploader|admin)\s+(sk_\S+)", line)
        if found:
            keys[found.group(1)] = found.group(2)
        if line.startswith("Console: "):
            return line.split()[1], keys
    raise AssertionError("no console URL printed:\n" + "".join(lines))


def test_settle_demo_console_serves_the_console_and_prints_keys_that_sign_in(tmp_path):
    env = {**os.environ, "SETTLE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite3'}",
           "SETTLE_OUTBOX_DIR": str(tmp_path / "outbox")}
    env.pop("SETTLE_REDIS_URL", None)
    for args in (["db", "upgrade"],
                 ["tenant", "apply", str(ROOT / "fixtures/tenants/us-cashback.toml")]):
        subprocess.run([str(SETTLE), *args], env=env, check=True, capture_output=True,
                       timeout=120)
    process = subprocess.Popen([str(SETTLE), "demo", "console", "--port", "0"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url, keys = _read_until_url(process)
        assert set(keys) == {"operator", "approver", "uploader", "admin"}
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/console/", url)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with opener.open(url + "sign-in", timeout=10) as response:
            token = csrf_of(response.read().decode())
        form = urllib.parse.urlencode({"key": keys["operator"], "csrf_token": token}).encode()
        with opener.open(url + "sign-in", data=form, timeout=10) as response:
            page = response.read().decode()
        assert response.url.endswith("/console/runs") and "Settlement runs" in page
    finally:
        process.terminate()
        process.wait(timeout=10)
