"""`make demo` shows the point sites: every exit, a campaign running out, a holiday pushing
a crediting date, and expiry (run as the Makefile runs it, on a SQLite file of its own)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_demo_exchanges_through_every_exit_and_shows_campaign_holiday_and_expiry(
        tmp_path):
    env = {**os.environ, "SETTLE_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
           "SETTLE_OUTBOX_DIR": str(tmp_path / "outbox")}
    env.pop("SETTLE_REDIS_URL", None)
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "settle"), "demo", "run",
                           "--fixtures", str(ROOT / "fixtures")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "refused: campaign_budget_exhausted" in out
    assert "bank    value   1000 for   1000 points (fee 0); credited Wed 25 Nov" in out
    last_day = [line for line in out.splitlines() if "fulfilment on Wed 25 Nov" in line][0]
    for state in ("amazon delivered", "bank delivered", "paypay delivered", "paypay failed",
                  "pex delivered", "amazon cancelled"):
        assert state in last_day
    returned = [line for line in out.splitlines() if "fulfilment on Fri 27 Nov" in line][0]
    assert "bank failed 1" in returned and "bank delivered" not in returned
    assert "the bank returns" in out and "go back by a compensating entry" in out
    assert "members' points expired" in out and "run again that day: 0 more" in out
    assert "at 10 point(s) per yen" in out
    assert "every entry balances: NO" not in out
    assert len(list((tmp_path / "outbox").rglob("zengin-*.txt"))) == 1
