"""Holding periods (settlement/commissions/holds.py): a Rakuten line without a status
confirms `confirm_after_days` after its event date, on arrival if that is already past at
the report's as-of date, else by the clock's pass or the next report; returns are never held."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from click.testing import CliRunner
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.catalog.service import upsert_retailer
from settlement.commissions.holds import confirm_held_for_tenants
from settlement.models import Commission
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import apply_policy
from tests.conftest import TenantHandle, policy_document
from tests.domain.helpers import (
    add_members,
    add_retailer,
    add_rule,
    balances,
    errors_of,
    ingest,
    ledger_problems,
)

HEADER = ("Member ID (U1),MID,Advertiser Name,Order ID,Transaction Date,Transaction Time,SKU,"
          "Sales,# of Items,Total Commission,Process Date,Process Time")
TOKYO = dt.timezone(dt.timedelta(hours=9))


def _tenant(engine, hold: int | None = 30) -> TenantHandle:
    slug = f"h-{uuid.uuid4().hex[:10]}"
    networks = {} if hold is None else {"rakuten": {"confirm_after_days": hold}}
    policy = TenantPolicy.model_validate(policy_document(slug, "JPY", networks=networks))
    with Session(engine) as session:
        tenant, _ = apply_policy(session, policy)
        session.commit()
        handle = TenantHandle(tenant.id, slug, "JPY")
    add_retailer(engine, handle, "style-market", network_ids={"rakuten": "43245"})
    add_rule(engine, handle, digits=0)  # 50% of the commission
    add_members(engine, handle, "HP000012")
    return handle


def _report(*lines: str) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode()


def _line(order: str, day: str, sales: str = "3980", commission: str = "159.9995",
          sku: str = "SKU-1", items: str = "1") -> str:
    return (f"HP000012,43245,Style Market,{order},{day},10:12:45,{sku},{sales},{items},"
            f"{commission},{day},03:10:00")


def _as_of(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=12, tzinfo=TOKYO)


def _statuses(engine, tenant) -> list[tuple]:
    with Session(engine) as session:
        return [tuple(row) for row in session.execute(
            select(Commission.transaction_id, Commission.status, Commission.confirm_after,
                   Commission.confirmed_on).where(Commission.tenant_id == tenant.id)
            .order_by(Commission.transaction_id))]


def _money(engine, tenant) -> tuple[int, int]:
    b = balances(engine, tenant, "HP000012")
    return b["pending"], b["available"]


def test_line_without_status_waits_for_its_hold_then_the_clock_confirms_it(engine):
    tenant = _tenant(engine)
    report = ingest(engine, tenant, _report(_line("A", "2026/06/04")),
                    fmt="rakuten", as_of=_as_of("2026-06-14"))
    assert report.status == "completed", errors_of(engine, tenant, report.id)
    assert _statuses(engine, tenant) == [("A|SKU-1|sale", "pending", dt.date(2026, 7, 4), None)]
    assert _money(engine, tenant) == (80, 0)  # half of 159.9995 yen, rounded once
    assert confirm_held_for_tenants(engine, tenant.slug, dt.date(2026, 7, 3)) == {
        tenant.slug: 0}
    assert confirm_held_for_tenants(engine, tenant.slug, dt.date(2026, 7, 4)) == {
        tenant.slug: 1}
    assert _statuses(engine, tenant)[0][1:] == ("confirmed", dt.date(2026, 7, 4),
                                                dt.date(2026, 7, 4))
    assert _money(engine, tenant) == (0, 80)
    assert confirm_held_for_tenants(engine, tenant.slug, dt.date(2026, 7, 5)) == {
        tenant.slug: 0}
    assert ledger_problems(engine, tenant) == []


def test_line_already_past_its_hold_at_the_reports_as_of_date_confirms_on_arrival(engine):
    tenant = _tenant(engine)
    ingest(engine, tenant, _report(_line("A", "2026/06/04")), fmt="rakuten",
           as_of=_as_of("2026-07-04"))
    assert _statuses(engine, tenant) == [
        ("A|SKU-1|sale", "confirmed", dt.date(2026, 7, 4), dt.date(2026, 7, 4))]
    assert _money(engine, tenant) == (0, 80)


def test_next_reports_as_of_date_ends_the_holds_that_are_over(engine):
    tenant = _tenant(engine)
    ingest(engine, tenant, _report(_line("A", "2026/06/04")), fmt="rakuten",
           as_of=_as_of("2026-06-10"))
    ingest(engine, tenant, _report(_line("B", "2026/07/01")), fmt="rakuten",
           as_of=_as_of("2026-07-05"))
    assert [row[:2] for row in _statuses(engine, tenant)] == [
        ("A|SKU-1|sale", "confirmed"), ("B|SKU-1|sale", "pending")]
    assert _money(engine, tenant) == (80, 80)
    assert ledger_problems(engine, tenant) == []


def test_return_is_never_held_it_takes_the_money_back_on_arrival(engine):
    tenant = _tenant(engine)
    ingest(engine, tenant, _report(_line("A", "2026/06/04")), fmt="rakuten",
           as_of=_as_of("2026-06-10"))
    ingest(engine, tenant, _report(_line("A", "2026/06/04", sales="-3980",
                                         commission="-159.9995", items="-1")),
           fmt="rakuten", as_of=_as_of("2026-06-12"))
    assert _money(engine, tenant) == (80, -80)
    confirm_held_for_tenants(engine, tenant.slug, dt.date(2026, 7, 4))
    assert _money(engine, tenant) == (0, 0)


def test_without_a_holding_period_a_line_without_status_stays_pending(engine):
    tenant = _tenant(engine, hold=None)
    ingest(engine, tenant, _report(_line("A", "2026/06/04")), fmt="rakuten",
           as_of=_as_of("2026-06-10"))
    confirm_held_for_tenants(engine, tenant.slug, dt.date(2027, 6, 4))
    assert _statuses(engine, tenant) == [("A|SKU-1|sale", "pending", None, None)]


def test_retailers_own_holding_period_overrides_the_networks(engine):
    tenant = _tenant(engine)
    with Session(engine) as session:
        upsert_retailer(session, tenant.id, "style-market", "Style Market", None,
                        {"rakuten": "43245"}, confirm_after_days=0)
        session.commit()
    ingest(engine, tenant, _report(_line("A", "2026/06/04")), fmt="rakuten",
           as_of=_as_of("2026-06-04"))
    assert _statuses(engine, tenant)[0][1:3] == ("confirmed", dt.date(2026, 6, 4))


@pytest.mark.parametrize("days", [-1, 731])
def test_holding_period_is_refused_outside_zero_to_730_days(days):
    with pytest.raises(ValidationError, match="confirm_after_days"):
        TenantPolicy.model_validate(policy_document(
            "holds", networks={"rakuten": {"confirm_after_days": days}}))


def test_settle_commissions_confirm_held_command_confirms_as_of_a_date(engine, db_url,
                                                                       monkeypatch):
    from cli import main
    from settlement.config import get_settings

    tenant = _tenant(engine)
    ingest(engine, tenant, _report(_line("A", "2026/06/04")), fmt="rakuten",
           as_of=_as_of("2026-06-10"))
    monkeypatch.setenv("SETTLE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["commissions", "confirm-held", "--tenant",
                                           tenant.slug, "--date", "2026-07-04"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert result.output == f"{tenant.slug}: 1 line(s) confirmed\n"
    assert _money(engine, tenant) == (0, 80)
