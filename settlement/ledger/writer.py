"""The ledger's one writer: nothing else inserts journal entries or postings.

Every entry is written the same way: its row, then all of its postings in ONE statement
(PostgreSQL's statement trigger checks that each statement's postings balance per entry
and currency, and a deferred trigger checks every new entry at commit; SQLite has the
same rule in code, `check_balanced`). The hot paths feed the postings from a SELECT (a
temporary table or the lines themselves), so an entry of a million legs is still one
INSERT ... SELECT, never a loop over rows in Python.

Idempotency is the entry's key, unique per tenant: `post_entry` answers a key already
posted with None; the set-based writers leave that look-up to callers that may repeat
(a key posted twice fails on the unique key, an IntegrityError, as it always has).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from settlement.models import JournalEntry, Posting
from settlement.sql import is_postgres, temp_table


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


def reserve_entry_id(session: Session) -> int:
    """An entry id taken before its entry is written (PostgreSQL): for rows that point at
    an entry whose legs are only known once those rows are written. Pass it to
    `post_from_select(entry_id=...)` in the same transaction, or leave it unused (a gap in
    the ids, as a rolled-back entry leaves)."""
    return session.execute(text(
        "SELECT nextval(pg_get_serial_sequence('journal_entries', 'id'))")).scalar_one()


def open_entry(session: Session, tenant_id: int, key: str, kind: str, memo: str | None,
               entry_id: int | None = None) -> int:
    """Insert the entry row (under a reserved `entry_id`, if given); its postings must
    follow in the same transaction."""
    entry = JournalEntry(id=entry_id, tenant_id=tenant_id, idempotency_key=key, kind=kind,
                         memo=memo)
    session.add(entry)
    session.flush()
    return entry.id


def post_entry(session: Session, tenant_id: int, key: str, kind: str, legs: Iterable[Leg],
               memo: str | None = None) -> int | None:
    """Post one balanced entry of a few legs known in Python. The same key again changes
    nothing and returns None."""
    legs = _balanced(key, legs)
    if not legs or existing_entry(session, tenant_id, key) is not None:
        return None
    savepoint = session.begin_nested()
    try:
        entry_id = _insert_entry(session, tenant_id, key, kind, legs, memo)
        savepoint.commit()
    except IntegrityError:
        # Another transaction posted the same key first: that is the idempotent outcome.
        savepoint.rollback()
        if existing_entry(session, tenant_id, key) is None:
            raise
        return None
    return entry_id


def post_new_entry(session: Session, tenant_id: int, key: str, kind: str, legs: Iterable[Leg],
                   memo: str | None = None) -> int | None:
    """`post_entry` for a key that cannot exist yet (the first entry of a row this
    transaction just made): no look-up first, no savepoint, two statements. A key posted
    before fails on the unique key."""
    legs = _balanced(key, legs)
    return _insert_entry(session, tenant_id, key, kind, legs, memo) if legs else None


def _balanced(key: str, legs: Iterable[Leg]) -> list[Leg]:
    """The entry's legs that move money, refused unless they sum to zero per currency."""
    legs = [leg for leg in legs if leg.amount != 0]
    totals: dict[str, int] = {}
    for leg in legs:
        totals[leg.currency] = totals.get(leg.currency, 0) + leg.amount
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if unbalanced:
        raise LedgerError(f"entry {key} does not balance: {unbalanced}")
    return legs


def _insert_entry(session: Session, tenant_id: int, key: str, kind: str, legs: list[Leg],
                  memo: str | None) -> int:
    entry_id = open_entry(session, tenant_id, key, kind, memo)
    # One multi-row statement: the database checks each statement's entries balance.
    session.execute(Posting.__table__.insert().values([
        {"tenant_id": tenant_id, "entry_id": entry_id, "account": leg.account,
         "member_id": leg.member_id, "currency": leg.currency, "amount": leg.amount}
        for leg in legs]))
    return entry_id


def post_from_select(session: Session, tenant_id: int, key: str, kind: str, memo: str | None,
                     *, currency: str, legs_sql: str, params: dict,
                     skip_if_empty: bool = True, entry_id: int | None = None) -> int | None:
    """Post one entry in `currency` whose legs `legs_sql` selects as (account, member_id,
    amount), with `params` bound, under `entry_id` if one was reserved. No legs: no entry,
    None. `skip_if_empty=False` when the caller knows there are legs: it saves the pass
    that counts them. The key must be new (callers that may come twice look it up first:
    `existing_entry`)."""
    if skip_if_empty and not session.execute(
            text(f"SELECT count(*) FROM ({legs_sql}) l"), params).scalar_one():
        return None
    entry_id = open_entry(session, tenant_id, key, kind, memo, entry_id)
    session.execute(text(f"""
      INSERT INTO postings (tenant_id, entry_id, account, member_id, currency, amount)
      SELECT :ledger_tenant, :ledger_entry, account, member_id, :ledger_currency, amount
      FROM ({legs_sql}) l"""),
                    {**params, "ledger_tenant": tenant_id, "ledger_entry": entry_id,
                     "ledger_currency": currency})
    check_balanced(session, tenant_id, entry_id)
    return entry_id


def post_entries_from_select(session: Session, tenant_id: int, kind: str, *, currency: str,
                             legs_sql: str, params: dict, legs_table: str,
                             entries_table: str) -> int:
    """Post one entry in `currency` per key of `legs_sql` (ekey, memo, account, member_id,
    amount): the legs of one key and account summed, every entry row in one statement and
    all of their postings in one more. Returns how many entries were made; each new key's
    entry id is left in the temporary table `entries_table` (ekey, entry_id) for the caller
    to point at (`legs_table` holds the summed legs). Keys must be new."""
    temp_table(session, legs_table, f"""
      SELECT ekey, max(memo) AS memo, account, member_id, sum(amount) AS amount
      FROM ({legs_sql}) l GROUP BY ekey, account, member_id""", params, analyze="when_large")
    p = {"ledger_tenant": tenant_id, "ledger_currency": currency, "ledger_kind": kind}
    bad = session.execute(text(
        f"SELECT ekey, sum(amount) FROM {legs_table} GROUP BY ekey "
        "HAVING sum(amount) <> 0")).first()
    if bad is not None:
        raise LedgerError(f"entry {bad[0]} does not balance: {bad[1]}")
    created = session.execute(text(f"""
      INSERT INTO journal_entries (tenant_id, idempotency_key, kind, memo)
      SELECT :ledger_tenant, ekey, :ledger_kind, max(memo) FROM {legs_table}
      WHERE amount <> 0 GROUP BY ekey"""), p).rowcount
    temp_table(session, entries_table, f"""
      SELECT k.ekey, (SELECT e.id FROM journal_entries e
                      WHERE e.tenant_id = :ledger_tenant AND e.idempotency_key = k.ekey)
               AS entry_id
      FROM (SELECT DISTINCT ekey FROM {legs_table} WHERE amount <> 0) k""", p,
               analyze="when_large")
    if created:
        session.execute(text(f"""
          INSERT INTO postings (tenant_id, entry_id, account, member_id, currency, amount)
          SELECT :ledger_tenant, e.entry_id, l.account, l.member_id, :ledger_currency, l.amount
          FROM {legs_table} l JOIN {entries_table} e ON e.ekey = l.ekey
          WHERE l.amount <> 0"""), p)
    return created


def check_balanced(session: Session, tenant_id: int, entry_id: int) -> None:
    """The zero-sum rule in code, for SQLite. PostgreSQL's triggers already check every
    statement's postings and, at commit, every new entry: reading the entry back there
    would only cost a scan of its postings (a million for a run's reservation)."""
    if is_postgres(session):
        return
    rows = session.execute(text(
        "SELECT currency, sum(amount) FROM postings WHERE tenant_id = :t AND entry_id = :e "
        "GROUP BY currency"), {"t": tenant_id, "e": entry_id}).all()
    if not rows:
        raise LedgerError(f"journal entry {entry_id} has no postings")
    bad = [(c, s) for c, s in rows if s != 0]
    if bad:
        raise LedgerError(f"journal entry {entry_id} does not balance: {bad}")
