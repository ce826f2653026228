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

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.ledger.buckets import MEMBER_BUCKETS


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
