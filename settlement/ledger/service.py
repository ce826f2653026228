"""The double-entry ledger: journal entries of postings that sum to zero per currency.

Accounts are named, not stored: a member's buckets are `pending`, `available`, `reserved`
and `paid` (with member_id set); the tenant's own accounts carry member_id NULL:
`network_receivable` (what networks owe the portal), `portal_margin`, and
`unattributed_pending` / `unattributed_available` (shares of lines whose member is not
known yet). A positive amount is a credit, so a member's balances are positive when the
portal owes them money.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from settlement.models import JournalEntry, Posting

MEMBER_BUCKETS = ("pending", "available", "reserved", "paid")
STATUS_BUCKET = {"pending": "pending", "confirmed": "available"}  # reversed: no bucket


class LedgerError(Exception):
    pass


@dataclass(frozen=True)
class Leg:
    account: str
    member_id: int | None
    currency: str
    amount: int


def existing_entry(session: Session, tenant_id: int, key: str) -> int | None:
    return session.scalar(select(JournalEntry.id).where(
        JournalEntry.tenant_id == tenant_id, JournalEntry.idempotency_key == key))


def open_entry(session: Session, tenant_id: int, key: str, kind: str, memo: str | None) -> int:
    """Insert the entry row; its postings must follow in the same transaction."""
    entry = JournalEntry(tenant_id=tenant_id, idempotency_key=key, kind=kind, memo=memo)
    session.add(entry)
    session.flush()
    return entry.id


def post_entry(session: Session, tenant_id: int, key: str, kind: str, legs: Iterable[Leg],
               memo: str | None = None) -> int | None:
    """Post one balanced entry. The same key again changes nothing and returns None."""
    legs = [leg for leg in legs if leg.amount != 0]
    if not legs:
        return None
    totals: dict[str, int] = {}
    for leg in legs:
        totals[leg.currency] = totals.get(leg.currency, 0) + leg.amount
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if unbalanced:
        raise LedgerError(f"entry {key} does not balance: {unbalanced}")
    if existing_entry(session, tenant_id, key) is not None:
        return None
    savepoint = session.begin_nested()
    try:
        entry_id = open_entry(session, tenant_id, key, kind, memo)
        # One multi-row statement: the database checks each statement's entries balance.
        session.execute(Posting.__table__.insert().values([
            {"tenant_id": tenant_id, "entry_id": entry_id, "account": leg.account,
             "member_id": leg.member_id, "currency": leg.currency, "amount": leg.amount}
            for leg in legs]))
        savepoint.commit()
    except IntegrityError:
        # Another transaction posted the same key first: that is the idempotent outcome.
        savepoint.rollback()
        if existing_entry(session, tenant_id, key) is None:
            raise
        return None
    return entry_id


def check_balanced(session: Session, tenant_id: int, entry_id: int) -> None:
    """The zero-sum rule in code, for SQLite. PostgreSQL's triggers already check every
    statement's postings and, at commit, every new entry: reading the entry back there
    would only cost a scan of its postings (a million for a run's reservation)."""
    if session.bind.dialect.name == "postgresql":
        return
    rows = session.execute(text(
        "SELECT currency, sum(amount) FROM postings WHERE tenant_id = :t AND entry_id = :e "
        "GROUP BY currency"), {"t": tenant_id, "e": entry_id}).all()
    if not rows:
        raise LedgerError(f"journal entry {entry_id} has no postings")
    bad = [(c, s) for c, s in rows if s != 0]
    if bad:
        raise LedgerError(f"journal entry {entry_id} does not balance: {bad}")


def member_balances(session: Session, tenant_id: int, member_id: int) -> dict[str, int]:
    rows = session.execute(text(
        "SELECT account, sum(amount) FROM postings WHERE tenant_id = :t AND member_id = :m "
        "GROUP BY account"), {"t": tenant_id, "m": member_id}).all()
    balances = {bucket: 0 for bucket in MEMBER_BUCKETS}
    balances.update({account: int(total) for account, total in rows})
    return balances


def member_statement(session: Session, tenant_id: int, member_id: int,
                     limit: int = 500) -> list[dict]:
    """The member's entries, newest first, each with its legs on the member's buckets."""
    rows = session.execute(text(
        "SELECT e.id, e.kind, e.memo, e.created_at, p.account, sum(p.amount) "
        "FROM postings p JOIN journal_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id "
        "WHERE p.tenant_id = :t AND p.member_id = :m "
        "GROUP BY e.id, e.kind, e.memo, e.created_at, p.account "
        "ORDER BY e.id DESC"), {"t": tenant_id, "m": member_id}).all()
    entries: dict[int, dict] = {}
    for entry_id, kind, memo, created_at, account, amount in rows:
        if isinstance(created_at, str):  # SQLite hands raw-SQL timestamps back as text
            created_at = dt.datetime.fromisoformat(created_at)
        entry = entries.setdefault(entry_id, {"entry_id": entry_id, "kind": kind, "memo": memo,
                                              "created_at": created_at, "changes": {}})
        entry["changes"][account] = int(amount)
        if len(entries) > limit:
            break
    return list(entries.values())[:limit]


def tenant_totals(session: Session, tenant_id: int) -> dict[str, int]:
    rows = session.execute(text(
        "SELECT account, sum(amount) FROM postings WHERE tenant_id = :t GROUP BY account"),
        {"t": tenant_id}).all()
    return {account: int(total) for account, total in rows}


def unbalanced_entries(session: Session, tenant_id: int) -> list[tuple]:
    """Every entry whose postings do not sum to zero per currency (should be none)."""
    return session.execute(text(
        "SELECT entry_id, currency, sum(amount) FROM postings WHERE tenant_id = :t "
        "GROUP BY entry_id, currency HAVING sum(amount) <> 0"), {"t": tenant_id}).all()
