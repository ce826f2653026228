"""The ledger has one writer: only settlement/ledger/ inserts journal entries or postings,
and the status-to-bucket mapping is rendered from its one definition."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from settlement.ledger.buckets import STATUS_BUCKET, account_sql, bucket_sql

SETTLEMENT = Path(__file__).resolve().parent.parent.parent / "settlement"
LEDGER = SETTLEMENT / "ledger"
# SQL text, or the ORM's way to the same rows (an insert on the tables, a new JournalEntry).
WRITES = re.compile(r"INSERT\s+INTO\s+(postings|journal_entries)\b"
                    r"|\b(Posting|JournalEntry)\.__table__\.insert\b"
                    r"|(?<!class )\b(Posting|JournalEntry)\(|insert\((Posting|JournalEntry)\b",
                    re.IGNORECASE)


def test_only_the_ledger_package_inserts_entries_or_postings_by_sql_or_orm():
    writers = sorted(str(path.relative_to(SETTLEMENT.parent))
                     for path in SETTLEMENT.rglob("*.py")
                     if LEDGER not in path.parents and WRITES.search(path.read_text("utf-8")))
    assert writers == []


def _evaluate(sql: str, **columns) -> str | None:
    names = ", ".join(f":{name} AS {name}" for name in columns)
    with sqlite3.connect(":memory:") as conn:
        return conn.execute(f"SELECT {sql} FROM (SELECT {names})", columns).fetchone()[0]


def test_each_status_renders_to_its_bucket_and_a_reversed_line_to_none():
    for status, bucket in STATUS_BUCKET.items():
        assert _evaluate(bucket_sql("status"), status=status) == bucket
    assert _evaluate(bucket_sql("status"), status="reversed") is None


def test_a_line_of_no_known_member_sits_in_the_unattributed_account_of_its_bucket():
    assert _evaluate(account_sql("status", "member_id"), status="pending",
                     member_id=None) == "unattributed_pending"
    assert _evaluate(account_sql("status", "member_id"), status="confirmed",
                     member_id=7) == "available"
