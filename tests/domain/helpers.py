"""Small helpers for domain tests: set up reference data and push reports through the
services the API and the workers use."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.catalog.service import MemberBatch, check_member, upsert_members, upsert_retailer
from settlement.commissions.rules import RuleInput, create_rule
from settlement.ledger.service import member_balances
from settlement.reports.service import process, receive

TODAY = dt.date(2026, 11, 24)


def add_retailer(engine, tenant, slug="macys", category=None, network_ids=None):
    with Session(engine) as session:
        retailer, _ = upsert_retailer(session, tenant.id, slug, slug.title(), category,
                                      network_ids or {})
        session.commit()
        return retailer.id


def add_rule(engine, tenant, retailer=None, kind="percent_of_commission", rate="50",
             amount=None, category=None, priority=0, category_only=False, valid_from=None,
             valid_to=None, digits=2):
    with Session(engine) as session:
        rule = create_rule(session, tenant.id, digits, RuleInput(
            retailer, category, kind, rate, amount, valid_from, valid_to, priority,
            category_only))
        session.commit()
        return rule.id


def add_members(engine, tenant, *external_ids):
    with Session(engine) as session:
        batch = MemberBatch()
        for number, external in enumerate(external_ids, start=1):
            check_member(number, {"external_id": external}, batch, TODAY)
        assert not batch.errors, batch.errors
        result = upsert_members(session, tenant.id, tenant.currency, batch, f"test:{external_ids}")
        session.commit()
        return result


def ingest(engine, tenant, body: bytes, *, fmt="generic", media="csv", as_of=None):
    with Session(engine) as session:
        received = receive(session, tenant.id, fmt, media, [body], uploaded_by="test",
                           as_of=as_of, max_bytes=10**8)
        session.commit()
    if received.duplicate:
        return None
    return process(engine, tenant.id, received.report_id)


def balances(engine, tenant, external_id) -> dict[str, int]:
    with Session(engine) as session:
        member_id = session.execute(text(
            "SELECT id FROM members WHERE tenant_id = :t AND external_id = :e"),
            {"t": tenant.id, "e": external_id}).scalar_one()
        return member_balances(session, tenant.id, member_id)


def errors_of(engine, tenant, report_id) -> list[tuple]:
    with Session(engine) as session:
        return session.execute(text(
            "SELECT line, field, code FROM report_errors WHERE tenant_id = :t AND report_id = :r "
            "ORDER BY seq"), {"t": tenant.id, "r": report_id}).all()


def ledger_problems(engine, tenant) -> list:
    """Entries that do not balance, and members whose balances disagree with a recount."""
    with Session(engine) as session:
        return session.execute(text(
            "SELECT entry_id, currency, sum(amount) FROM postings WHERE tenant_id = :t "
            "GROUP BY entry_id, currency HAVING sum(amount) <> 0"), {"t": tenant.id}).all()
