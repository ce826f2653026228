"""Network amounts at the network's precision (up to 4 decimals): kept on the commission,
the member's share computed from them and rounded once by the tenant's rule, the ledger in
whole minor units with every entry summing to zero, the sub-cent remainder in the portal's
margin."""
from __future__ import annotations

import datetime as dt
import json
import uuid

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.money import apply_rate, network_scale, network_to_minor, parse_rate_ppm
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import apply_policy
from tests.conftest import TenantHandle, generic_csv, policy_document
from tests.domain.helpers import add_members, add_retailer, add_rule, errors_of, ingest

AS_OF = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)


def _tenant(engine, rounding: str = "half_even", currency: str = "USD") -> TenantHandle:
    slug = f"np-{uuid.uuid4().hex[:10]}"
    policy = TenantPolicy.model_validate(policy_document(slug, currency, rounding=rounding))
    with Session(engine) as session:
        tenant, _ = apply_policy(session, policy)
        session.commit()
        handle = TenantHandle(tenant.id, slug, currency)
    add_retailer(engine, handle, "macys", network_ids={"cj": "4518721"})
    add_retailer(engine, handle, "expedia")
    add_members(engine, handle, "m0", "m1")
    return handle


def _commissions(engine, tenant) -> list[tuple]:
    with Session(engine) as session:
        return session.execute(text(
            "SELECT transaction_id, sale_precise, commission_precise, sale_amount, "
            "commission_amount, share_amount, margin_amount FROM commissions "
            "WHERE tenant_id = :t ORDER BY transaction_id"), {"t": tenant.id}).all()


def _unbalanced(engine, tenant) -> list:
    with Session(engine) as session:
        return session.execute(text(
            "SELECT entry_id FROM postings WHERE tenant_id = :t GROUP BY entry_id, currency "
            "HAVING sum(amount) <> 0"), {"t": tenant.id}).all()


def _posted(engine, tenant, account: str) -> int:
    with Session(engine) as session:
        return int(session.execute(text(
            "SELECT coalesce(sum(amount), 0) FROM postings WHERE tenant_id = :t "
            "AND account = :a"), {"t": tenant.id, "a": account}).scalar_one())


def _cj_record(commission_id: str, sale: str, commission: str, **extra) -> dict:
    record = {"commissionId": commission_id, "orderId": f"O-{commission_id}",
              "shopperId": "m0", "advertiserId": "4518721",
              "eventDate": "2026-09-03T14:12:45-0700", "saleAmountUsd": sale,
              "pubCommissionAmountUsd": commission, "actionStatus": "closed",
              "validationStatus": "ACCEPTED", "original": True}
    record.update(extra)
    return record


def test_cj_sub_cent_commission_is_kept_precise_and_the_remainder_is_the_portals_margin(engine):
    tenant = _tenant(engine)
    add_rule(engine, tenant)  # 50% of the commission
    body = json.dumps([_cj_record("3179263458", "194.53", "7.781")]).encode()
    report = ingest(engine, tenant, body, fmt="cj", media="json", as_of=AS_OF)
    assert report.status == "completed", errors_of(engine, tenant, report.id)
    # 7.781 -> 778 cents in the ledger; half of 7.781 is 3.8905 -> 389 cents, rounded once
    # (half of the rounded 778 would be 389 too, but from 7.7810 the margin is 778 - 389).
    assert _commissions(engine, tenant) == [("3179263458", 1945300, 77810, 19453, 778, 389, 389)]
    assert _posted(engine, tenant, "network_receivable") == -778
    assert _posted(engine, tenant, "portal_margin") == 389
    assert _unbalanced(engine, tenant) == []


def test_share_of_sale_is_rounded_once_from_the_precise_sale_not_from_rounded_cents(engine):
    tenant = _tenant(engine)
    add_rule(engine, tenant, retailer="expedia", kind="percent_of_sale", rate="10")
    # 10% of 0.0549 is 0.00549 -> 0.01; from the sale rounded first (0.05) it would be
    # 0.005 -> 0.00 (half-even).
    body = generic_csv("a,,m0,expedia,,2026-09-15,0.0549,0.0049,USD,pending",
                       "b,,m1,expedia,,2026-09-15,12.3456,0.9999,USD,confirmed")
    report = ingest(engine, tenant, body, as_of=AS_OF)
    assert report.status == "completed", errors_of(engine, tenant, report.id)
    assert _commissions(engine, tenant) == [
        ("a", 549, 49, 5, 0, 1, -1),
        ("b", 123456, 9999, 1235, 100, 123, -23)]
    assert _unbalanced(engine, tenant) == []


def test_more_than_four_decimals_is_refused_naming_line_and_field(engine):
    tenant = _tenant(engine)
    body = generic_csv("a,,m0,expedia,,2026-09-15,10.00,0.12345,USD,pending",
                       "b,,m0,expedia,,2026-09-15,10.0x,0.12,USD,pending")
    report = ingest(engine, tenant, body, as_of=AS_OF)
    assert errors_of(engine, tenant, report.id) == [
        (2, "commission_amount", "too_many_decimals"), (3, "sale_amount", "invalid_amount")]
    assert _commissions(engine, tenant) == []


def test_restating_a_sub_cent_amount_that_rounds_to_the_same_cents_is_an_update(engine):
    tenant = _tenant(engine)
    add_rule(engine, tenant)
    ingest(engine, tenant, generic_csv("a,,m0,expedia,,2026-09-15,10.00,1.2301,USD,pending"),
           as_of=AS_OF)
    report = ingest(engine, tenant,
                    generic_csv("a,,m0,expedia,,2026-09-15,10.00,1.2349,USD,pending"),
                    as_of=AS_OF + dt.timedelta(hours=1))
    assert (report.updated, report.unchanged) == (1, 0)
    assert _commissions(engine, tenant)[0][2] == 12349


# --- property: shares + margins = the commissions rounded, every entry balances -----------

sub_cent_line = st.fixed_dictionaries({
    "member": st.sampled_from(["m0", "m1", "ghost"]),
    "retailer": st.sampled_from(["macys", "expedia"]),
    "sale": st.integers(0, 5_000_000),  # ten-thousandths of a dollar: up to $500
    "commission": st.integers(0, 500_000),
    "status": st.sampled_from(["pending", "confirmed", "reversed"]),
})


def _units_text(units: int) -> str:
    return f"{units // 10_000}.{units % 10_000:04d}".rstrip("0").rstrip(".")


def _expected_share(line: dict) -> int:
    if line["retailer"] == "expedia":  # 7.5% of the sale
        return apply_rate(line["sale"], parse_rate_ppm("7.5"), MODE[0], network_scale(2))
    return apply_rate(line["commission"], parse_rate_ppm("33.3333"), MODE[0], network_scale(2))


MODE = ["half_even"]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(sub_cent_line, min_size=1, max_size=12),
       st.sampled_from(["half_even", "half_up", "down"]))
def test_sub_cent_commissions_split_into_shares_and_margins_that_sum_to_them_rounded(
        engine, lines, rounding):
    MODE[0] = rounding
    tenant = _tenant(engine, rounding)
    add_rule(engine, tenant, rate="33.3333")
    add_rule(engine, tenant, retailer="expedia", kind="percent_of_sale", rate="7.5")
    rows = [f"t{i},,{l['member']},{l['retailer']},,2026-09-15,{_units_text(l['sale'])},"
            f"{_units_text(l['commission'])},USD,{l['status']}" for i, l in enumerate(lines)]
    report = ingest(engine, tenant, generic_csv(*rows), as_of=AS_OF)
    assert report.status == "completed", errors_of(engine, tenant, report.id)
    stored = {row[0]: row for row in _commissions(engine, tenant)}
    rounded_total = 0
    for i, line in enumerate(lines):
        _, sale_p, commission_p, _, commission, share, margin = stored[f"t{i}"]
        assert (sale_p, commission_p) == (line["sale"], line["commission"])
        assert commission == network_to_minor(line["commission"], 2, rounding)
        assert share == _expected_share(line)
        assert share + margin == commission
        if line["status"] != "reversed":
            rounded_total += commission
    assert _posted(engine, tenant, "network_receivable") == -rounded_total
    assert _unbalanced(engine, tenant) == []
