"""Stored states have one spelling: settlement/states.py. The source is read for a status
written as a bare literal, in SQL or in Python, and each enum's values must fit the column
that stores them (the columns are plain strings: their length is all the database checks)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from settlement.exchanges.models import Exchange, ExchangeBatch
from settlement.models import (Commission, Referral, ReferralBonus, Report, RunBatch, RunItem,
                               SettlementRun)
from settlement.states import (BatchStatus, BonusStatus, CommissionStatus, ExchangeBatchStatus,
                               ExchangeStatus, ItemStatus, ReferralStatus, ReportStatus,
                               RunStatus, sql_in)

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("settlement", "api", "workers", "cli")
# Frozen history, and the one place the literals live.
EXEMPT = ("settlement/migrations/versions/", "settlement/states.py")
# SQL: status = 'x', status <> 'x', status IN ('x', ...), CASE status WHEN 'x' (any column
# whose name ends in status: c.status, old_status, friend_status).
SQL_LITERAL = re.compile(r"status\s*(?:=|<>|!=)\s*'[a-z_]+'"
                         r"|status\s+(?i:not\s+)?(?i:in)\s*\(\s*'[a-z_]+'"
                         r"|status\s+(?i:when)\s+'[a-z_]+'")
# Python: x.status == "x", status in ("x", ...), status="x", X.status.in_(("x", ...)).
# Providers' words are upper case (PayPal's SUCCESS) and stay theirs.
PYTHON_LITERAL = re.compile(r"status\s*(?:==|!=)\s*\"[a-z_]+\""
                            r"|status\s+(?:not\s+)?in\s*\(\s*\"[a-z_]+\""
                            r"|\bstatus\s*=\s*\"[a-z_]+\""
                            r"|status\.(?:not)?in_\(\s*\(\s*\"[a-z_]+\"")


def _scanned_files() -> list[Path]:
    return [path for top in SCANNED for path in sorted((ROOT / top).rglob("*.py"))
            if not str(path.relative_to(ROOT)).startswith(EXEMPT)]


def test_status_literals_come_from_states():
    offenders = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                 for path in _scanned_files()
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if SQL_LITERAL.search(line) or PYTHON_LITERAL.search(line)]
    assert offenders == []


@pytest.mark.parametrize("text", [
    "WHERE status = 'pending'", "AND c.status <> 'reversed'", "r.status IN ('open', 'expired')",
    "status NOT IN ('completed', 'following')", "CASE g.c_status WHEN 'confirmed' THEN 1 END",
])
def test_the_scan_catches_sql_literals(text):
    assert SQL_LITERAL.search(text)


@pytest.mark.parametrize("text", [
    'if run.status == "planned":', 'batch.status = "completed"', 'status="queued", as_of=x',
    'if status in ("completed", "following"):', 'Report.status.in_(("queued", "processing"))',
])
def test_the_scan_catches_python_literals(text):
    assert PYTHON_LITERAL.search(text)


@pytest.mark.parametrize("states, column", [
    (CommissionStatus, Commission.status), (ReportStatus, Report.status),
    (RunStatus, SettlementRun.status), (BatchStatus, RunBatch.status),
    (ItemStatus, RunItem.status), (ReferralStatus, Referral.status),
    (BonusStatus, ReferralBonus.status), (ExchangeStatus, Exchange.status),
    (ExchangeBatchStatus, ExchangeBatch.status),
])
def test_every_state_fits_its_column(states, column):
    assert max(len(state) for state in states) <= column.type.length


def test_a_state_reads_as_its_stored_value_in_sql():
    assert f"status = '{CommissionStatus.PENDING}'" == "status = 'pending'"
    assert sql_in(BonusStatus.PENDING, BonusStatus.EARNED) == "('pending', 'earned')"
    assert CommissionStatus.CONFIRMED == "confirmed" and str(RunStatus.CANCELLED) == "cancelled"
