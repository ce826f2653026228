"""The "no cent lost" check: the ledger agrees with itself and with what it records.

For one tenant:
- every journal entry balances (per currency);
- the tenant's accounts sum to zero (per currency): money only ever moves between them;
- each member's postings agree with the sub-ledgers they summarise: the member's total
  (pending + available + reserved + paid) is the sum of the member's live commission
  shares (pending or confirmed) and live referral bonuses (pending or earned); the pending
  bucket is the pending part of those; the paid bucket is what the member's succeeded run
  items paid.

A few set-based statements per tenant (one GROUP BY each), never a query per member.
`record_check` writes the outcome to the tenant's audit log (action `ledger.checked`),
which GET /v1/health/ledger reads; a mismatch is also logged as an error by the caller.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from settlement.db import tenant_session

from settlement.ledger.service import tenant_totals, unbalanced_entries
from settlement.models import AuditEvent, Tenant
from settlement.states import BonusStatus, CommissionStatus, ItemStatus, sql_in

ACTION = "ledger.checked"
SHOWN = 100  # mismatches listed per kind; the counts say how many there are

# One row per member whose buckets disagree: (member, ledger vs expected) for the total,
# the pending bucket and the paid bucket.
_MEMBERS = f"""
  SELECT x.member_id, m.external_id,
         sum(x.ledger_total), sum(x.expected_total), sum(x.ledger_pending),
         sum(x.expected_pending), sum(x.ledger_paid), sum(x.expected_paid)
  FROM (
    SELECT member_id, amount AS ledger_total, 0 AS expected_total,
           CASE WHEN account = 'pending' THEN amount ELSE 0 END AS ledger_pending,
           0 AS expected_pending,
           CASE WHEN account = 'paid' THEN amount ELSE 0 END AS ledger_paid,
           0 AS expected_paid
    FROM postings WHERE tenant_id = :t AND member_id IS NOT NULL
    UNION ALL
    SELECT member_id, 0, share_amount, 0,
           CASE WHEN status = '{CommissionStatus.PENDING}' THEN share_amount ELSE 0 END, 0, 0
    FROM commissions
    WHERE tenant_id = :t AND member_id IS NOT NULL
      AND status IN {sql_in(CommissionStatus.PENDING, CommissionStatus.CONFIRMED)}
    UNION ALL
    SELECT member_id, 0, amount, 0,
           CASE WHEN status = '{BonusStatus.PENDING}' THEN amount ELSE 0 END, 0, 0
    FROM referral_bonuses
    WHERE tenant_id = :t AND status IN {sql_in(BonusStatus.PENDING, BonusStatus.EARNED)}
    UNION ALL
    SELECT member_id, 0, 0, 0, 0, 0, amount
    FROM run_items WHERE tenant_id = :t AND status = '{ItemStatus.SUCCEEDED}') x
  JOIN members m ON m.tenant_id = :t AND m.id = x.member_id
  GROUP BY x.member_id, m.external_id
  HAVING sum(x.ledger_total) <> sum(x.expected_total)
      OR sum(x.ledger_pending) <> sum(x.expected_pending)
      OR sum(x.ledger_paid) <> sum(x.expected_paid)
  ORDER BY x.member_id"""


@dataclass
class LedgerCheck:
    tenant_id: int
    checked_at: str
    tenant: str = ""  # its slug
    unbalanced_entries: list[dict] = field(default_factory=list)
    # The accounts' balances when they do not sum to zero (a tenant has one currency).
    tenant_totals: dict[str, int] = field(default_factory=dict)
    member_mismatches: list[dict] = field(default_factory=list)
    member_mismatch_count: int = 0

    @property
    def ok(self) -> bool:
        return not (self.unbalanced_entries or self.tenant_totals or self.member_mismatch_count)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def check_ledger(session: Session, tenant_id: int) -> LedgerCheck:
    result = LedgerCheck(tenant_id, dt.datetime.now(dt.timezone.utc).isoformat(
        timespec="seconds"))
    result.unbalanced_entries = [{"entry_id": e, "currency": c, "sum": int(s)}
                                 for e, c, s in unbalanced_entries(session, tenant_id)[:SHOWN]]
    totals = tenant_totals(session, tenant_id)
    if sum(totals.values()) != 0:
        result.tenant_totals = totals
    mismatches = session.execute(text(_MEMBERS), {"t": tenant_id}).all()
    result.member_mismatch_count = len(mismatches)
    result.member_mismatches = [
        {"member": ext, "total": [int(lt), int(et)], "pending": [int(lp), int(ep)],
         "paid": [int(lpaid), int(epaid)]}
        for _, ext, lt, et, lp, ep, lpaid, epaid in mismatches[:SHOWN]]
    return result


def record_check(session: Session, result: LedgerCheck, principal: str) -> None:
    session.add(AuditEvent(tenant_id=result.tenant_id, principal=principal, action=ACTION,
                           object_type="ledger", object_id=None,
                           detail=json.dumps(result.as_dict(), sort_keys=True)))


def last_check(session: Session, tenant_id: int) -> dict | None:
    detail = session.scalar(select(AuditEvent.detail).where(
        AuditEvent.tenant_id == tenant_id, AuditEvent.action == ACTION)
        .order_by(AuditEvent.id.desc()).limit(1))
    return None if detail is None else json.loads(detail)


def check_tenants(engine: Engine, slug: str | None, principal: str) -> list[LedgerCheck]:
    """Check every tenant (or the one named), each in its own transaction, and record
    each outcome. Read-only but for the audit row: safe to run at any time, twice at once."""
    with tenant_session(engine) as session:
        query = select(Tenant.id, Tenant.slug).order_by(Tenant.id)
        if slug is not None:
            query = query.where(Tenant.slug == slug)
        tenants = session.execute(query).all()
    results = []
    for tenant_id, tenant_slug in tenants:
        with tenant_session(engine, tenant_id) as session:
            result = check_ledger(session, tenant_id)
            result.tenant = tenant_slug
            record_check(session, result, principal)
            session.commit()
        results.append(result)
    return results
