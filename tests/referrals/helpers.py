"""Helpers of the referral tests: a tenant with referral terms, members written through the
catalog service (as the API writes them), reports through the report service, and the
state of referrals, bonuses and the ledger read back from the database."""
from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.catalog.service import MemberBatch, check_member, upsert_members
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import apply_policy
from tests.conftest import TenantHandle, generic_csv, policy_document
from settlement.reports.service import process, receive
from tests.domain.helpers import add_retailer, add_rule

TODAY = dt.date(2026, 11, 24)
ADDRESS = {"address_line1": "1 Main St", "city": "Savannah", "region": "GA",
           "postal_code": "31401", "country": "US"}
STANDARD = {"referrer_bonus": {"amount": "30.00"}, "friend_bonus": {"amount": "20.00"},
            "minimum_purchase": "30.00", "window_days": 90}
METHODS = {"check": {"enabled": True}, "paypal": {"enabled": True},
           "amex_mr": {"enabled": True, "points_per_major_unit": 100, "minimum_points": 500,
                       "eligible_cards": ["gold", "platinum", "green"]},
           "bilt": {"enabled": True, "rates": [
               {"valid_from": "2026-05-15", "tiers": ["blue"], "points_per_major_unit": 50},
               {"valid_from": "2026-05-15", "tiers": ["silver", "gold", "platinum"],
                "points_per_major_unit": 100}]}}


def make_tenant(engine, referrals=(STANDARD,), rate: str = "10", **overrides) -> TenantHandle:
    """A USD tenant with the given referral terms, retailer macys paying `rate`% of the sale."""
    slug = f"r-{uuid.uuid4().hex[:10]}"
    document = policy_document(slug, referrals=list(referrals),
                               payouts={"dates": ["02-15", "05-15", "08-15", "11-15"],
                                        "minimum": "5.01", "methods": METHODS})
    document.update(overrides)
    with Session(engine) as session:
        tenant, _ = apply_policy(session, TenantPolicy.model_validate(document))
        session.commit()
        handle = TenantHandle(tenant.id, slug, "USD")
    add_retailer(engine, handle, "macys")
    add_rule(engine, handle, retailer="macys", kind="percent_of_sale", rate=rate)
    return handle


def put_members(engine, tenant, *records: dict) -> dict:
    """Write members as one batch; each record is {external_id, ...}: joined_at defaults to
    2026-09-01 and an address is added unless given."""
    with Session(engine) as session:
        batch = MemberBatch()
        for n, record in enumerate(records, start=1):
            record = {"name": f"Member {record['external_id']}", "joined_at": "2026-09-01",
                      **ADDRESS, "payout_method": "check", **record}
            check_member(n, {k: v for k, v in record.items() if v is not None}, batch, TODAY)
        assert not batch.errors, batch.errors
        result = upsert_members(session, tenant.id, "USD", batch, f"test:{uuid.uuid4().hex}")
        session.commit()
        return result


def ingest(engine, tenant, body: bytes, *, as_of: dt.datetime | None = None):
    """Upload and process a generic CSV report as the API does: a duplicate is rolled back
    (nothing stored) and answers None."""
    with Session(engine) as session:
        received = receive(session, tenant.id, "generic", "csv", [body], uploaded_by="test",
                           as_of=as_of, max_bytes=10**8)
        if received.duplicate:
            session.rollback()
            return None
        session.commit()
    return process(engine, tenant.id, received.report_id)


def row(txn: str, member: str, day: str = "2026-09-10", sale: str = "100.00",
        status: str = "pending") -> str:
    whole, cents = sale.split(".")
    commission = f"{int(whole) // 5}.{cents}"  # any commission: the share is 10% of the sale
    return f"{txn},o-{txn},{member},macys,apparel,{day},{sale},{commission},USD,{status}"


def report(engine, tenant, *rows: str, as_of: dt.datetime | None = None):
    return ingest(engine, tenant, generic_csv(*rows),
                  as_of=as_of or dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc))


def referrals(engine, tenant) -> dict[str, tuple]:
    """friend -> (status, reason, qualifying transaction id)."""
    with Session(engine) as session:
        return {f: (s, r, t) for f, s, r, t in session.execute(text("""
          SELECT f.external_id, r.status, r.reason, c.transaction_id FROM referrals r
          JOIN members f ON f.tenant_id = r.tenant_id AND f.id = r.friend_id
          LEFT JOIN commissions c ON c.tenant_id = r.tenant_id AND c.id = r.commission_id
          WHERE r.tenant_id = :t"""), {"t": tenant.id})}


def bonuses(engine, tenant) -> list[tuple]:
    """(friend, side, member, amount, points, status, reason, transaction id), in id order."""
    with Session(engine) as session:
        return [tuple(r) for r in session.execute(text("""
          SELECT f.external_id, b.side, m.external_id, b.amount, b.points, b.status, b.reason,
                 c.transaction_id
          FROM referral_bonuses b
          JOIN referrals r ON r.tenant_id = b.tenant_id AND r.id = b.referral_id
          JOIN members f ON f.tenant_id = r.tenant_id AND f.id = r.friend_id
          JOIN members m ON m.tenant_id = b.tenant_id AND m.id = b.member_id
          JOIN commissions c ON c.tenant_id = b.tenant_id AND c.id = b.commission_id
          WHERE b.tenant_id = :t ORDER BY b.id"""), {"t": tenant.id})]


def money(engine, tenant, external_id: str) -> tuple[int, int]:
    """(pending, available) of a member, in cents."""
    with Session(engine) as session:
        rows = dict(session.execute(text("""
          SELECT p.account, sum(p.amount) FROM postings p
          JOIN members m ON m.tenant_id = p.tenant_id AND m.id = p.member_id
          WHERE p.tenant_id = :t AND m.external_id = :e GROUP BY p.account"""),
                                    {"t": tenant.id, "e": external_id}).all())
    return int(rows.get("pending") or 0), int(rows.get("available") or 0)


def ledger(engine, tenant) -> dict:
    """Unbalanced entries (none, ever), the referral expense, and what the bonuses say it
    should be."""
    with Session(engine) as session:
        p = {"t": tenant.id}
        unbalanced = session.execute(text(
            "SELECT entry_id FROM postings WHERE tenant_id = :t GROUP BY entry_id, currency "
            "HAVING sum(amount) <> 0"), p).all()
        expense = session.execute(text(
            "SELECT coalesce(sum(amount), 0) FROM postings WHERE tenant_id = :t "
            "AND account = 'referral_expense'"), p).scalar_one()
        live = session.execute(text(
            "SELECT coalesce(sum(amount), 0) FROM referral_bonuses WHERE tenant_id = :t "
            "AND status IN ('pending', 'earned')"), p).scalar_one()
        return {"unbalanced": unbalanced, "expense": -int(expense), "live": int(live)}
