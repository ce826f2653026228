"""The commission lifecycle on both databases: inserted, updated, unchanged, stale and
refused lines, and what each does to the member's balances."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.ledger.writer import Leg, post_entry
from tests.conftest import generic_csv
from tests.domain.helpers import (add_members, add_retailer, add_rule, balances, errors_of,
                                  ingest, ledger_problems)

T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc)


def _setup(engine, tenant):
    add_retailer(engine, tenant, "macys")
    add_rule(engine, tenant, retailer="macys", kind="percent_of_sale", rate="6")
    add_members(engine, tenant, "m1", "m2")


def test_new_pending_line_credits_the_members_pending_balance(engine, tenant):
    _setup(engine, tenant)
    report = ingest(engine, tenant, generic_csv(
        "t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending"), as_of=T0)
    assert (report.status, report.inserted, report.rejected) == ("completed", 1, 0)
    assert balances(engine, tenant, "m1")["pending"] == 600
    assert ledger_problems(engine, tenant) == []


def test_confirmation_moves_the_share_from_pending_to_available(engine, tenant):
    _setup(engine, tenant)
    ingest(engine, tenant, generic_csv("t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending"),
           as_of=T0)
    report = ingest(engine, tenant, generic_csv(
        "t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,confirmed"), as_of=T0 + dt.timedelta(days=1))
    assert report.updated == 1
    assert balances(engine, tenant, "m1") == {"pending": 0, "available": 600, "reserved": 0,
                                              "paid": 0}


def test_partial_return_lowers_the_share_by_the_rule_stored_at_ingest(engine, tenant):
    _setup(engine, tenant)
    ingest(engine, tenant, generic_csv("t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,confirmed"),
           as_of=T0)
    # A later, more generous rule must not rewrite the stored commission's share rule.
    add_rule(engine, tenant, retailer="macys", kind="percent_of_sale", rate="20", priority=5)
    ingest(engine, tenant, generic_csv("t1,o1,m1,macys,,2026-10-01,40.00,3.20,USD,confirmed"),
           as_of=T0 + dt.timedelta(days=1))
    assert balances(engine, tenant, "m1")["available"] == 240  # 6% of 40.00


def test_reversal_after_payout_leaves_a_negative_available_balance(engine, tenant):
    _setup(engine, tenant)
    ingest(engine, tenant, generic_csv("t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,confirmed"),
           as_of=T0)
    with Session(engine) as session:
        member_id = session.execute(text("SELECT id FROM members WHERE tenant_id = :t AND "
                                         "external_id = 'm1'"), {"t": tenant.id}).scalar_one()
        post_entry(session, tenant.id, "test-payout:1", "payout",
                   [Leg("available", member_id, "USD", -600), Leg("paid", member_id, "USD", 600)])
        session.commit()
    ingest(engine, tenant, generic_csv("t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,reversed"),
           as_of=T0 + dt.timedelta(days=1))
    assert balances(engine, tenant, "m1") == {"pending": 0, "available": -600, "reserved": 0,
                                              "paid": 600}
    assert ledger_problems(engine, tenant) == []


def test_same_lines_again_are_unchanged_and_post_nothing(engine, tenant):
    _setup(engine, tenant)
    line = "t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending"
    ingest(engine, tenant, generic_csv(line), as_of=T0)
    report = ingest(engine, tenant, generic_csv(line, ""), as_of=T0 + dt.timedelta(hours=1))
    assert (report.unchanged, report.inserted, report.entry_id) == (1, 0, None)
    assert balances(engine, tenant, "m1")["pending"] == 600


def test_identical_file_is_a_duplicate_and_applies_nothing(engine, tenant):
    _setup(engine, tenant)
    body = generic_csv("t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending")
    ingest(engine, tenant, body, as_of=T0)
    assert ingest(engine, tenant, body) is None
    assert balances(engine, tenant, "m1")["pending"] == 600


def test_line_older_than_the_applied_state_is_stale(engine, tenant):
    _setup(engine, tenant)
    ingest(engine, tenant, generic_csv("t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,confirmed"),
           as_of=T0)
    report = ingest(engine, tenant, generic_csv(
        "t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending"), as_of=T0 - dt.timedelta(days=2))
    assert report.stale == 1
    assert balances(engine, tenant, "m1")["available"] == 600


def test_reversed_commission_cannot_be_reinstated(engine, tenant):
    _setup(engine, tenant)
    ingest(engine, tenant, generic_csv("t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,reversed"),
           as_of=T0)
    report = ingest(engine, tenant, generic_csv(
        "t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,confirmed"), as_of=T0 + dt.timedelta(days=1))
    assert report.rejected == 1
    assert errors_of(engine, tenant, report.id) == [(2, "status", "reinstated")]


def test_same_transaction_twice_in_one_file_refuses_both_lines(engine, tenant):
    _setup(engine, tenant)
    report = ingest(engine, tenant, generic_csv(
        "t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending",
        "t1,o1,m1,macys,,2026-10-01,90.00,7.00,USD,pending",
        "t2,o2,m1,macys,,2026-10-01,10.00,1.00,USD,pending"), as_of=T0)
    assert (report.inserted, report.rejected) == (1, 2)
    assert {(line, code) for line, _, code in errors_of(engine, tenant, report.id)} == {
        (2, "duplicate_transaction"), (3, "duplicate_transaction")}


def test_a_transaction_repeated_far_apart_in_a_file_refuses_both_lines(engine, tenant):
    # Ascending ids but for the repeat: the one-pass proof of "no repeats" must not hold.
    _setup(engine, tenant)
    report = ingest(engine, tenant, generic_csv(
        "t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending",
        "t2,o2,m1,macys,,2026-10-01,10.00,1.00,USD,pending",
        "t3,o3,m1,macys,,2026-10-01,10.00,1.00,USD,pending",
        "t1,o1,m1,macys,,2026-10-01,90.00,7.00,USD,pending"), as_of=T0)
    assert (report.inserted, report.rejected) == (2, 2)
    assert {(line, code) for line, _, code in errors_of(engine, tenant, report.id)} == {
        (2, "duplicate_transaction"), (5, "duplicate_transaction")}


def test_bad_lines_are_listed_and_good_lines_applied_in_partial_mode(engine, tenant):
    _setup(engine, tenant)
    report = ingest(engine, tenant, generic_csv(
        "t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending",
        "t2,o2,m1,macys,,2026-10-01,1e3,8.00,USD,pending",
        "t3,o3,m1,nowhere,,2026-10-01,10.00,1.00,USD,pending"), as_of=T0)
    assert (report.status, report.inserted, report.rejected, report.lines) == (
        "completed", 1, 2, 3)
    assert errors_of(engine, tenant, report.id) == [
        (3, "sale_amount", "invalid_amount"), (4, "retailer", "unknown_retailer")]


def test_whole_mode_refuses_the_file_when_any_line_is_bad(engine, make_tenant):
    tenant = make_tenant(report_errors="whole")
    _setup(engine, tenant)
    report = ingest(engine, tenant, generic_csv(
        "t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending",
        "t2,o2,m1,macys,,2026-10-01,NaN,8.00,USD,pending"), as_of=T0)
    assert report.status == "failed"
    assert balances(engine, tenant, "m1")["pending"] == 0


def test_unknown_member_is_unattributed_then_attached_when_created(engine, tenant):
    _setup(engine, tenant)
    report = ingest(engine, tenant, generic_csv(
        "t1,o1,newbie,macys,,2026-10-01,100.00,8.00,USD,confirmed"), as_of=T0)
    assert report.unattributed == 1
    add_members(engine, tenant, "newbie")
    assert balances(engine, tenant, "newbie")["available"] == 600
    with Session(engine) as session:
        left = session.execute(text(
            "SELECT sum(amount) FROM postings WHERE tenant_id = :t AND account LIKE "
            "'unattributed%'"), {"t": tenant.id}).scalar_one()
    assert left == 0
    assert ledger_problems(engine, tenant) == []


def test_commission_equals_member_share_plus_margin(engine, tenant):
    _setup(engine, tenant)
    add_retailer(engine, tenant, "expedia")
    add_rule(engine, tenant, retailer="expedia", kind="percent_of_sale", rate="30")
    ingest(engine, tenant, generic_csv(
        "t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending",
        "t2,o2,m1,expedia,,2026-10-01,100.00,4.00,USD,pending"), as_of=T0)
    with Session(engine) as session:
        rows = session.execute(text(
            "SELECT commission_amount, share_amount, margin_amount FROM commissions "
            "WHERE tenant_id = :t"), {"t": tenant.id}).all()
    assert all(c == s + m for c, s, m in rows)
    assert sorted(s for _, s, _ in rows) == [600, 3000]  # expedia: subsidised, margin < 0


def test_category_limited_offer_pays_nothing_outside_its_category(engine, tenant):
    add_retailer(engine, tenant, "amazon")
    add_members(engine, tenant, "m1", "m2")
    add_rule(engine, tenant)  # tenant-wide default: 50% of commission
    add_rule(engine, tenant, retailer="amazon", category="fashion", kind="percent_of_sale",
             rate="1", category_only=True)
    ingest(engine, tenant, generic_csv(
        "t1,o1,m1,amazon,fashion,2026-10-01,200.00,6.00,USD,confirmed",
        "t2,o2,m2,amazon,electronics,2026-10-01,200.00,6.00,USD,confirmed"), as_of=T0)
    assert balances(engine, tenant, "m1")["available"] == 200
    assert balances(engine, tenant, "m2")["available"] == 0


def test_promotion_wins_by_priority_only_inside_its_dates(engine, tenant):
    _setup(engine, tenant)
    add_rule(engine, tenant, retailer="macys", kind="percent_of_sale", rate="12", priority=10,
             valid_from=dt.date(2026, 11, 1), valid_to=dt.date(2026, 11, 9))
    ingest(engine, tenant, generic_csv(
        "t1,o1,m1,macys,,2026-11-03,100.00,8.00,USD,confirmed",
        "t2,o2,m2,macys,,2026-11-09,100.00,8.00,USD,confirmed"), as_of=T0 + dt.timedelta(days=20))
    assert balances(engine, tenant, "m1")["available"] == 1200
    assert balances(engine, tenant, "m2")["available"] == 600


def test_network_lines_find_the_retailer_by_its_advertiser_id(engine, tenant):
    add_retailer(engine, tenant, "macys", network_ids={"impact": "7721"})
    add_rule(engine, tenant)
    add_members(engine, tenant, "m1")
    body = (b'[{"Id": "a1", "Oid": "o1", "SubId1": "m1", "CampaignId": "7721", '
            b'"EventDate": "2026-10-01T10:00:00-07:00", "Amount": "100.00", "Payout": "8.00", '
            b'"Currency": "USD", "State": "APPROVED"}]')
    report = ingest(engine, tenant, body, fmt="impact", media="json", as_of=T0)
    assert (report.inserted, report.rejected) == (1, 0)
    assert balances(engine, tenant, "m1")["available"] == 400
