"""A point-site tenant (1 point = 1 yen unless asked), its members and their points."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.catalog.service import member_by_external_id
from settlement.ledger.service import member_balances
from settlement.ledger.writer import Leg, post_entry
from settlement.models import JournalEntry, Posting
from tests.domain.helpers import add_members

JST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 19, 10, 0, tzinfo=JST)  # a Thursday; Monday 23rd is a holiday
BANK = {"bank_code": "0005", "branch_code": "123", "account_type": "ordinary",
        "account_number": "1234567", "account_name": "ヤマダ タロウ"}
ORIGINATOR = {"client_code": "1234567890", "name": "ｶ)ｼﾞｪｲﾋﾟｰﾎﾟｲﾝﾂ", "bank_code": "0001",
              "branch_code": "001", "account_number": "7654321"}
EXITS = {
    "amazon": {"kind": "gift_code", "partner": "amazon_jp", "rate": {"points": 1, "value": 1},
               "minimum_value": 300, "maximum_value": 50000, "step": 1,
               "monthly_cap_value": 30000},
    "amazon_fixed": {"kind": "gift_code", "partner": "amazon_jp",
                     "rate": {"points": 1, "value": 1}, "denominations": [500, 1000, 3000]},
    "bank": {"kind": "bank_transfer", "partner": "zengin", "rate": {"points": 1, "value": 1},
             "minimum_value": 1000, "fee_points": 330, "fee_points_by_bank": {"0005": 0},
             "crediting": {"kind": "business_days", "days": 3}, "originator": ORIGINATOR},
    "paypay": {"kind": "points_transfer", "partner": "paypay",
               "rate": {"points": 1, "value": 1}, "minimum_value": 100,
               "crediting": {"kind": "business_days", "days": 1}},
    "pex": {"kind": "points_transfer", "partner": "pex", "rate": {"points": 1, "value": 10},
            "minimum_value": 5000, "step": 10},
    "closed": {"kind": "gift_code", "partner": "amazon_jp", "enabled": False,
               "rate": {"points": 1, "value": 1}},
}


def campaign(**fields) -> dict:
    doc = {"name": "amazon-95", "exit": "amazon", "starts": "2026-11-01T00:00:00+09:00",
           "ends": "2026-12-01T00:00:00+09:00", "rate": {"points": 95, "value": 100}}
    doc.update(fields)
    return doc


@pytest.fixture
def points_tenant(make_tenant):
    def make(**overrides):
        doc = {"exits": EXITS, "points": {"expiry": {"rule": "inactivity", "days": 180}}}
        doc.update(overrides)
        return make_tenant("JPY", **doc)
    return make


def member_id(engine, tenant, external_id: str) -> int:
    with Session(engine) as session:
        found = member_by_external_id(session, tenant.id, external_id)
        if found is None:
            add_members(engine, tenant, external_id)
            found = member_by_external_id(session, tenant.id, external_id)
        return found.id


def earn(engine, tenant, external_id: str, yen: int, key: str | None = None,
         on: dt.date | None = None) -> int:
    """Confirmed earnings straight into the member's available balance (made at noon JST
    on `on`, when given: the ledger is append-only, so a date is set as it is written)."""
    mid = member_id(engine, tenant, external_id)
    with Session(engine) as session:
        key = key or f"earn:{external_id}:{_next(session, tenant)}"
        legs = [Leg("network_receivable", None, "JPY", -yen), Leg("available", mid, "JPY", yen)]
        if on is None:
            post_entry(session, tenant.id, key, "test_earning", legs)
        else:
            moment = dt.datetime.combine(on, dt.time(12), JST)
            entry = JournalEntry(tenant_id=tenant.id, idempotency_key=key, kind="test_earning",
                                 created_at=moment)
            session.add(entry)
            session.flush()
            session.execute(Posting.__table__.insert().values([
                {"tenant_id": tenant.id, "entry_id": entry.id, "account": leg.account,
                 "member_id": leg.member_id, "currency": leg.currency, "amount": leg.amount}
                for leg in legs]))
        session.commit()
    return mid


def _next(session, tenant) -> int:
    return session.execute(text("SELECT count(*) FROM journal_entries WHERE tenant_id = :t"),
                           {"t": tenant.id}).scalar_one()


def buckets(engine, tenant, mid: int) -> dict[str, int]:
    with Session(engine) as session:
        return member_balances(session, tenant.id, mid)
