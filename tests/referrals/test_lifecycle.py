"""The referral lifecycle on both databases: qualifying purchases make both bonuses pending,
their confirmation earns them, a reversal first voids them (and a later purchase in the
window may qualify instead); one pair per friend, ever; the guards (cycles, shared
addresses and payout destinations held for review, the yearly cap, unknown referrers,
missing terms) each with its reason; points bonuses at their cash value; the sweep; and
the ledger always balanced, with every entry keyed by its cause."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.errors import http_status
from settlement.ledger.service import member_statement
from settlement.referrals import service as referrals_service
from tests.referrals.helpers import (STANDARD, bonuses, ledger, make_tenant, money,
                                     put_members, referrals, report, row)

NOV2 = dt.datetime(2026, 11, 2, 12, tzinfo=dt.timezone.utc)
NOV3 = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)


def _pair(tenant_engine, tenant):
    return [(b[1], b[3], b[5]) for b in bonuses(tenant_engine, tenant)]


def _entry_keys(engine, tenant) -> list[str]:
    with Session(engine) as session:
        return list(session.execute(text(
            "SELECT idempotency_key FROM journal_entries WHERE tenant_id = :t "
            "AND kind = 'referral' ORDER BY id"), {"t": tenant.id}).scalars())


def _balanced(engine, tenant):
    state = ledger(engine, tenant)
    assert state["unbalanced"] == [] and state["expense"] == state["live"]
    return state


def _friend_and_referrer(engine, **friend):
    tenant = make_tenant(engine)
    put_members(engine, tenant, {"external_id": "R1", "joined_at": "2026-01-05"},
                {"external_id": "F1", "referred_by": "R1", "address_line1": "9 Elm St",
                 **friend})
    return tenant


def test_a_referred_member_is_recorded_as_an_open_referral(engine):
    tenant = _friend_and_referrer(engine)
    assert referrals(engine, tenant) == {"F1": ("open", None, None)}
    assert bonuses(engine, tenant) == []


def test_a_qualifying_purchase_makes_both_bonuses_pending_and_its_confirmation_earns_them(
        engine):
    tenant = _friend_and_referrer(engine)
    report(engine, tenant, row("t1", "F1", sale="100.00"))
    assert referrals(engine, tenant) == {"F1": ("pending", None, "t1")}
    assert _pair(engine, tenant) == [("friend", 2000, "pending"), ("referrer", 3000, "pending")]
    assert money(engine, tenant, "F1") == (1000 + 2000, 0)  # cash back and the bonus
    assert money(engine, tenant, "R1") == (3000, 0)
    report(engine, tenant, row("t1", "F1", sale="100.00", status="confirmed"), as_of=NOV2)
    assert referrals(engine, tenant) == {"F1": ("earned", None, "t1")}
    assert _pair(engine, tenant) == [("friend", 2000, "earned"), ("referrer", 3000, "earned")]
    assert money(engine, tenant, "F1") == (0, 3000) and money(engine, tenant, "R1") == (0, 3000)
    referral_id = _referral_id(engine, tenant, "F1")
    commission = _commission_id(engine, tenant, "t1")
    assert _entry_keys(engine, tenant) == [f"referral:{referral_id}:{commission}:pending",
                                           f"referral:{referral_id}:{commission}:confirmed"]
    assert _balanced(engine, tenant)["expense"] == 5000
    with Session(engine) as session:
        confirmed_on = session.execute(text(
            "SELECT DISTINCT confirmed_on FROM referral_bonuses WHERE tenant_id = :t"),
            {"t": tenant.id}).scalar_one()
    assert str(confirmed_on) == "2026-11-02"  # the commission's confirmation date (New York)


def _referral_id(engine, tenant, friend) -> int:
    with Session(engine) as session:
        return session.execute(text(
            "SELECT r.id FROM referrals r JOIN members f ON f.tenant_id = r.tenant_id "
            "AND f.id = r.friend_id WHERE r.tenant_id = :t AND f.external_id = :f"),
            {"t": tenant.id, "f": friend}).scalar_one()


def _commission_id(engine, tenant, txn) -> int:
    with Session(engine) as session:
        return session.execute(text(
            "SELECT id FROM commissions WHERE tenant_id = :t AND transaction_id = :x"),
            {"t": tenant.id, "x": txn}).scalar_one()


def test_a_purchase_confirmed_at_first_sight_earns_both_bonuses_at_once(engine):
    tenant = _friend_and_referrer(engine)
    report(engine, tenant, row("t1", "F1", status="confirmed"))
    assert referrals(engine, tenant)["F1"][0] == "earned"
    assert money(engine, tenant, "F1") == (0, 3000) and money(engine, tenant, "R1") == (0, 3000)
    assert [k.rsplit(":", 1)[1] for k in _entry_keys(engine, tenant)] == ["confirmed"]
    _balanced(engine, tenant)


def test_a_reversal_before_confirmation_voids_the_pair_and_a_later_purchase_qualifies(engine):
    tenant = _friend_and_referrer(engine)
    report(engine, tenant, row("t1", "F1", day="2026-09-05"),
           row("t2", "F1", day="2026-09-20", sale="50.00"))
    assert referrals(engine, tenant)["F1"] == ("pending", None, "t1")  # the first purchase
    report(engine, tenant, row("t1", "F1", day="2026-09-05", status="reversed"), as_of=NOV2)
    # Voided, and in the same pass the next purchase in the window qualifies instead.
    assert referrals(engine, tenant)["F1"] == ("pending", None, "t2")
    assert _pair(engine, tenant) == [("friend", 2000, "voided"), ("referrer", 3000, "voided"),
                                     ("friend", 2000, "pending"), ("referrer", 3000, "pending")]
    assert money(engine, tenant, "R1") == (3000, 0)
    assert [k.rsplit(":", 1)[1] for k in _entry_keys(engine, tenant)] == [
        "pending", "voided", "pending"]
    report(engine, tenant, row("t2", "F1", day="2026-09-20", sale="50.00", status="reversed"),
           as_of=NOV3)
    assert referrals(engine, tenant)["F1"] == ("open", None, None)
    assert money(engine, tenant, "R1") == (0, 0) and money(engine, tenant, "F1") == (0, 0)
    assert _balanced(engine, tenant)["expense"] == 0


def test_a_purchase_lowered_below_the_minimum_before_confirming_voids_the_pair(engine):
    tenant = _friend_and_referrer(engine)
    report(engine, tenant, row("t1", "F1", sale="40.00"))
    assert referrals(engine, tenant)["F1"][0] == "pending"
    report(engine, tenant, row("t1", "F1", sale="29.99", status="confirmed"), as_of=NOV2)
    assert referrals(engine, tenant)["F1"] == ("open", None, None)
    assert [b[5] for b in bonuses(engine, tenant)] == ["voided", "voided"]
    assert money(engine, tenant, "F1") == (0, 300) and money(engine, tenant, "R1") == (0, 0)
    _balanced(engine, tenant)


def test_purchases_that_do_not_meet_the_terms_make_no_bonus(engine):
    tenant = _friend_and_referrer(engine)  # joined 2026-09-01: the window ends 2026-11-30
    report(engine, tenant,
           row("small", "F1", sale="29.99"),                       # below the minimum
           row("early", "F1", day="2026-08-31"),                   # before joining
           row("gone", "F1", status="reversed"))                   # reversed
    assert referrals(engine, tenant)["F1"] == ("open", None, None)
    assert bonuses(engine, tenant) == []


def test_a_purchase_after_the_window_does_not_qualify(engine):
    tenant = _friend_and_referrer(engine, joined_at="2026-06-01")  # window ends 2026-08-30
    report(engine, tenant, row("late", "F1", day="2026-08-30"))
    assert referrals(engine, tenant)["F1"] == ("open", None, None)
    report(engine, tenant, row("last-day", "F1", day="2026-08-29"), as_of=NOV2)
    assert referrals(engine, tenant)["F1"] == ("pending", None, "last-day")


def test_a_cash_back_share_of_zero_does_not_qualify(engine):
    tenant = make_tenant(engine, rate="0")
    put_members(engine, tenant, {"external_id": "R1"}, {"external_id": "F1", "referred_by": "R1",
                                                         "address_line1": "9 Elm St"})
    report(engine, tenant, row("t1", "F1", status="confirmed"))
    assert referrals(engine, tenant)["F1"] == ("open", None, None)


def test_one_pair_per_friend_ever_and_terms_that_keep_bonuses_keep_them_after_a_return(
        engine):
    tenant = make_tenant(engine, referrals=({**STANDARD, "keep_bonus_after_reversal": True},))
    put_members(engine, tenant, {"external_id": "R1", "joined_at": "2026-01-05"},
                {"external_id": "F1", "referred_by": "R1", "address_line1": "9 Elm St"})
    report(engine, tenant, row("t1", "F1", status="confirmed"))
    report(engine, tenant, row("t1", "F1", status="reversed"), row("t2", "F1"),
           row("t3", "F1", status="confirmed"), as_of=NOV2)
    assert referrals(engine, tenant)["F1"] == ("earned", None, "t1")
    assert len(bonuses(engine, tenant)) == 2
    assert money(engine, tenant, "R1") == (0, 3000)
    _balanced(engine, tenant)


def test_replaying_reports_and_sweeping_again_changes_nothing(engine):
    tenant = _friend_and_referrer(engine)
    report(engine, tenant, row("t1", "F1"))
    report(engine, tenant, row("t1", "F1"), as_of=NOV2)  # the same line again: unchanged
    report(engine, tenant, row("t1", "F1", status="confirmed"), as_of=NOV3)
    keys = _entry_keys(engine, tenant)
    for _ in range(2):
        with Session(engine) as session:
            referrals_service.sweep(session, tenant.id, dt.date(2026, 11, 24))
            session.commit()
        put_members(engine, tenant, {"external_id": "F1", "referred_by": "R1",
                                     "address_line1": "9 Elm St"})
    assert _entry_keys(engine, tenant) == keys and len(keys) == 2
    assert money(engine, tenant, "R1") == (0, 3000)


def test_a_friend_sharing_the_referrers_mailing_address_is_held_then_approved(engine):
    tenant = make_tenant(engine)
    put_members(engine, tenant, {"external_id": "R1", "joined_at": "2026-01-05"},
                {"external_id": "F1", "referred_by": "R1"})  # same default address
    report(engine, tenant, row("t1", "F1"))
    assert referrals(engine, tenant)["F1"] == ("held", "shared_mailing_address", "t1")
    assert bonuses(engine, tenant) == [] and money(engine, tenant, "R1") == (0, 0)
    with Session(engine) as session:
        referrals_service.review(session, tenant.id, _referral_id(engine, tenant, "F1"),
                                 "approve", "key:7")
        session.commit()
    assert referrals(engine, tenant)["F1"] == ("pending", None, "t1")
    assert money(engine, tenant, "R1") == (3000, 0)
    # Approved once: the guard does not hold it again (another purchase, a confirmation).
    report(engine, tenant, row("t1", "F1", status="confirmed"), as_of=NOV2)
    assert referrals(engine, tenant)["F1"] == ("earned", None, "t1")
    _balanced(engine, tenant)


def test_a_held_referral_rejected_on_review_is_refused_for_good(engine):
    tenant = make_tenant(engine)
    put_members(engine, tenant, {"external_id": "R1", "paypal_email": "Same@example.com",
                                 "address_line1": "1 A St"},
                {"external_id": "F1", "referred_by": "R1", "paypal_email": "same@example.com",
                 "address_line1": "2 B St"})
    report(engine, tenant, row("t1", "F1"))
    assert referrals(engine, tenant)["F1"] == ("held", "shared_payout_destination", "t1")
    referral_id = _referral_id(engine, tenant, "F1")
    with Session(engine) as session:
        referrals_service.review(session, tenant.id, referral_id, "reject", "key:7")
        session.commit()
    report(engine, tenant, row("t2", "F1"), as_of=NOV2)
    assert referrals(engine, tenant)["F1"] == ("refused", "rejected_on_review", "t1")
    assert bonuses(engine, tenant) == []
    with Session(engine) as session:
        try:
            referrals_service.review(session, tenant.id, referral_id, "approve", "key:7")
        except referrals_service.ReferralError as exc:
            assert (http_status(exc.code), exc.code) == (409, "not_held")
        else:
            raise AssertionError("a refused referral cannot be reviewed again")


def _referrer_side(engine, tenant) -> dict[str, tuple]:
    """friend -> (status, reason, confirmed_on) of the referrer's bonus."""
    with Session(engine) as session:
        return {f: (s, r, str(d) if d else None) for f, s, r, d in session.execute(text("""
          SELECT f.external_id, b.status, b.reason, b.confirmed_on FROM referral_bonuses b
          JOIN referrals r ON r.tenant_id = b.tenant_id AND r.id = b.referral_id
          JOIN members f ON f.tenant_id = r.tenant_id AND f.id = r.friend_id
          WHERE b.tenant_id = :t AND b.side = 'referrer'
            AND b.status NOT IN ('voided', 'clawed_back')"""), {"t": tenant.id})}


def _capped_tenant(engine, cap: int, joined_at: str = "2026-09-01", friends: int = 4,
                   **overrides):
    tenant = make_tenant(engine, referrals=({**STANDARD, "cap_per_referrer_per_year": cap},),
                         **overrides)
    put_members(engine, tenant, {"external_id": "R1", "joined_at": "2025-01-05"},
                *({"external_id": f"F{n}", "referred_by": "R1", "joined_at": joined_at,
                   "address_line1": f"{n} Elm St"} for n in range(1, friends + 1)))
    return tenant


def _at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.timezone.utc)


def test_the_yearly_cap_refuses_the_referrers_bonus_but_not_the_friends(engine):
    tenant = _capped_tenant(engine, cap=2)
    report(engine, tenant, row("t1", "F1", day="2026-09-03", status="confirmed"))
    report(engine, tenant, row("t3", "F3", day="2026-09-09", status="confirmed"),
           row("t2", "F2", day="2026-09-05", status="confirmed"),
           row("t4", "F4", day="2026-09-12", status="confirmed"), as_of=NOV2)
    # (Sorted: the order the database wrote the bonuses in is its own business.)
    capped = sorted((b[0], b[1], b[5], b[6]) for b in bonuses(engine, tenant)
                    if b[5] == "refused")
    # F1 (first report), then F2 and F3, earned the same day, by purchase date: F3 and F4
    # are past the cap of 2.
    assert capped == [("F3", "referrer", "refused", "referrer_cap_reached"),
                      ("F4", "referrer", "refused", "referrer_cap_reached")]
    assert money(engine, tenant, "R1") == (0, 6000)
    assert all(money(engine, tenant, f"F{n}") == (0, 1000 + 2000) for n in range(1, 5))
    assert {f: s[0] for f, s in referrals(engine, tenant).items()} == {
        "F1": "earned", "F2": "earned", "F3": "earned", "F4": "earned"}
    _balanced(engine, tenant)


def test_a_bonus_clawed_back_frees_its_place_under_the_yearly_cap(engine):
    tenant = _capped_tenant(engine, cap=1, friends=2)
    report(engine, tenant, row("t1", "F1", day="2026-09-03", status="confirmed"))
    report(engine, tenant, row("t1", "F1", day="2026-09-03", status="reversed"), as_of=NOV2)
    report(engine, tenant, row("t2", "F2", day="2026-09-05", status="confirmed"), as_of=NOV3)
    assert _referrer_side(engine, tenant) == {"F2": ("earned", None, "2026-11-03")}
    assert money(engine, tenant, "R1") == (0, 3000)
    _balanced(engine, tenant)


def test_the_yearly_cap_counts_bonuses_by_the_year_they_were_earned_not_purchased(engine):
    # Friends who joined in November: their window runs into January.
    tenant = _capped_tenant(engine, cap=1, joined_at="2025-11-01", friends=3)
    report(engine, tenant, row("t1", "F1", day="2025-12-20"), as_of=_at("2025-12-21"))
    report(engine, tenant, row("t2", "F2", day="2025-12-22", status="confirmed"),
           as_of=_at("2025-12-28"))
    # F1's December purchase is confirmed in January: its bonus is earned in 2026, whose
    # cap is still free (by the purchase's year, 2025, it would have been refused).
    report(engine, tenant, row("t1", "F1", day="2025-12-20", status="confirmed"),
           as_of=_at("2026-01-05"))
    report(engine, tenant, row("t3", "F3", day="2026-01-02", status="confirmed"),
           as_of=_at("2026-01-10"))
    assert _referrer_side(engine, tenant) == {
        "F1": ("earned", None, "2026-01-05"), "F2": ("earned", None, "2025-12-28"),
        "F3": ("refused", "referrer_cap_reached", "2026-01-10")}
    assert money(engine, tenant, "R1") == (0, 6000)
    assert money(engine, tenant, "F3") == (0, 1000 + 2000)  # the friend's bonus stands
    _balanced(engine, tenant)


def test_a_pending_referrer_bonus_past_the_cap_is_refused_when_earned_and_leaves_pending(
        engine):
    tenant = _capped_tenant(engine, cap=1, friends=3)
    report(engine, tenant, row("t1", "F1", day="2026-09-03"), row("t2", "F2", day="2026-09-04"),
           row("t3", "F3", day="2026-09-05"))
    # Pending bonuses are not capped yet: the year they will be earned is not known.
    assert money(engine, tenant, "R1") == (9000, 0)
    report(engine, tenant, row("t2", "F2", day="2026-09-04", status="confirmed"), as_of=NOV2)
    # F1 and F3 confirm together the next day: both past the cap of 1 in 2026.
    report(engine, tenant, row("t3", "F3", day="2026-09-05", status="confirmed"),
           row("t1", "F1", day="2026-09-03", status="confirmed"), as_of=NOV3)
    assert _referrer_side(engine, tenant) == {
        "F1": ("refused", "referrer_cap_reached", "2026-11-03"),
        "F2": ("earned", None, "2026-11-02"),
        "F3": ("refused", "referrer_cap_reached", "2026-11-03")}
    assert money(engine, tenant, "R1") == (0, 3000)
    assert all(money(engine, tenant, f"F{n}") == (0, 1000 + 2000) for n in range(1, 4))
    assert {f: s[0] for f, s in referrals(engine, tenant).items()} == {
        "F1": "earned", "F2": "earned", "F3": "earned"}
    _balanced(engine, tenant)


def test_the_year_a_bonus_is_earned_is_the_tenants_local_year(engine):
    tenant = _capped_tenant(engine, cap=1, joined_at="2025-11-01", friends=2,
                            timezone="America/New_York")
    report(engine, tenant, row("t2", "F2", day="2025-12-02", status="confirmed"),
           as_of=_at("2025-12-10"))
    # 03:00 UTC on January 1st is still December 31st in New York: 2025's cap is full.
    report(engine, tenant, row("t1", "F1", day="2025-12-20", status="confirmed"),
           as_of=_at("2026-01-01", hour=3))
    assert _referrer_side(engine, tenant)["F1"] == (
        "refused", "referrer_cap_reached", "2025-12-31")
    _balanced(engine, tenant)


def test_a_referral_cycle_is_refused_with_its_reason(engine):
    tenant = make_tenant(engine)
    put_members(engine, tenant, {"external_id": "A", "referred_by": "C", "address_line1": "1"},
                {"external_id": "B", "referred_by": "A", "address_line1": "2"},
                {"external_id": "C", "referred_by": "B", "address_line1": "3"},
                {"external_id": "D", "referred_by": "A", "address_line1": "4"})
    report(engine, tenant, row("t1", "A"), row("t2", "B"), row("t4", "D"))
    assert referrals(engine, tenant) == {
        "A": ("refused", "referral_cycle", None), "B": ("refused", "referral_cycle", None),
        "C": ("refused", "referral_cycle", None), "D": ("pending", None, "t4")}
    # Breaking the cycle reopens the referrals on it.
    put_members(engine, tenant, {"external_id": "A", "referred_by": "", "address_line1": "1"})
    assert {f: s[:2] for f, s in referrals(engine, tenant).items()} == {
        "A": ("refused", "not_referred"), "B": ("pending", None), "C": ("open", None),
        "D": ("pending", None)}


def test_an_unknown_referrer_is_refused_until_that_member_is_created(engine):
    tenant = make_tenant(engine)
    put_members(engine, tenant, {"external_id": "F1", "referred_by": "LATER"})
    report(engine, tenant, row("t1", "F1"))
    assert referrals(engine, tenant)["F1"] == ("refused", "unknown_referrer", None)
    put_members(engine, tenant, {"external_id": "LATER", "address_line1": "5 Oak St"})
    assert referrals(engine, tenant)["F1"] == ("pending", None, "t1")
    assert money(engine, tenant, "LATER") == (3000, 0)


def test_a_friend_whose_purchases_arrived_before_them_qualifies_when_created(engine):
    tenant = make_tenant(engine)
    put_members(engine, tenant, {"external_id": "R1"})
    report(engine, tenant, row("t1", "NEW"))  # unattributed: NEW is not a member yet
    assert referrals(engine, tenant) == {}
    put_members(engine, tenant, {"external_id": "NEW", "referred_by": "R1",
                                 "address_line1": "7 Pine St"})
    assert referrals(engine, tenant)["NEW"] == ("pending", None, "t1")
    assert money(engine, tenant, "NEW") == (1000 + 2000, 0)
    _balanced(engine, tenant)


def test_no_terms_or_no_join_date_refuse_with_their_reason(engine):
    tenant = make_tenant(engine, referrals=({**STANDARD, "valid_from": "2026-10-01"},))
    put_members(engine, tenant, {"external_id": "R1"},
                {"external_id": "F1", "referred_by": "R1", "address_line1": "2"},
                {"external_id": "F2", "referred_by": "R1", "joined_at": None,
                 "address_line1": "3"},
                {"external_id": "F3", "referred_by": "R1", "joined_at": "2026-10-01",
                 "address_line1": "4"})
    assert {f: s[:2] for f, s in referrals(engine, tenant).items()} == {
        "F1": ("refused", "no_terms"), "F2": ("refused", "no_join_date"), "F3": ("open", None)}


def test_the_terms_in_force_on_the_join_date_apply_and_a_promotion_wins(engine):
    promotion = {"valid_from": "2026-09-01", "valid_to": "2026-10-01",
                 "referrer_bonus": {"points": 5000, "points_method": "amex_mr"},
                 "friend_bonus": {"amount": "40.00"}, "minimum_purchase": "60.00",
                 "window_days": 30}
    tenant = make_tenant(engine, referrals=(promotion, STANDARD))
    put_members(engine, tenant, {"external_id": "R1", "payout_method": "amex_mr"},
                {"external_id": "F1", "referred_by": "R1", "joined_at": "2026-09-10",
                 "address_line1": "2"},
                {"external_id": "F2", "referred_by": "R1", "joined_at": "2026-10-01",
                 "address_line1": "3"})
    report(engine, tenant, row("a", "F1", day="2026-09-15", sale="59.99"),
           row("b", "F1", day="2026-09-16", sale="60.00"),
           row("c", "F2", day="2026-10-02", sale="30.00"))
    got = sorted((b[0], b[1], b[3], b[4], b[7]) for b in bonuses(engine, tenant))
    assert got == [("F1", "friend", 4000, None, "b"), ("F1", "referrer", 5000, 5000, "b"),
                   ("F2", "friend", 2000, None, "c"), ("F2", "referrer", 3000, None, "c")]
    with Session(engine) as session:
        window = session.execute(text(
            "SELECT r.window_end FROM referrals r JOIN members f ON f.tenant_id = r.tenant_id "
            "AND f.id = r.friend_id WHERE r.tenant_id = :t AND f.external_id = 'F1'"),
            {"t": tenant.id}).scalar_one()
    assert str(window) == "2026-10-10"


def test_a_bilt_points_bonus_is_valued_at_the_members_tier_rate(engine):
    terms = {**STANDARD, "referrer_bonus": {"points": 1000, "points_method": "bilt"}}
    tenant = make_tenant(engine, referrals=(terms,))
    put_members(engine, tenant,
                {"external_id": "BLUE", "payout_method": "bilt", "bilt_account": "B1",
                 "bilt_tier": "blue", "address_line1": "1"},
                {"external_id": "GOLD", "payout_method": "bilt", "bilt_account": "B2",
                 "bilt_tier": "gold", "address_line1": "2"},
                {"external_id": "CHECK", "address_line1": "3"},
                {"external_id": "F1", "referred_by": "BLUE", "address_line1": "4"},
                {"external_id": "F2", "referred_by": "GOLD", "address_line1": "5"},
                {"external_id": "F3", "referred_by": "CHECK", "address_line1": "6"})
    report(engine, tenant, row("t1", "F1"), row("t2", "F2"), row("t3", "F3"))
    referrer = {b[2]: (b[3], b[4]) for b in bonuses(engine, tenant) if b[1] == "referrer"}
    # 1,000 points at 50 per $1 (blue) is $20.00; at 100 per $1 $10.00; without a tier the
    # highest rate in force (100) values them.
    assert referrer == {"BLUE": (2000, 1000), "GOLD": (1000, 1000), "CHECK": (1000, 1000)}


def test_the_sweep_expires_ended_windows_and_a_late_report_of_a_purchase_in_time_revives(
        engine):
    tenant = _friend_and_referrer(engine, joined_at="2026-07-01")  # window ends 2026-09-29
    put_members(engine, tenant, {"external_id": "F2", "referred_by": "R1",
                                 "address_line1": "8 Elm St", "joined_at": "2026-11-01"})
    with Session(engine) as session:
        result = referrals_service.sweep(session, tenant.id, dt.date(2026, 11, 24))
        session.commit()
    assert result["expired"] == 1 and result["statuses"]["expired"] == 1
    assert referrals(engine, tenant) == {"F1": ("expired", "window_ended", None),
                                         "F2": ("open", None, None)}
    report(engine, tenant, row("t1", "F1", day="2026-09-28"), as_of=NOV2)
    assert referrals(engine, tenant)["F1"] == ("pending", None, "t1")


def test_referral_entries_show_on_the_members_statement(engine):
    tenant = _friend_and_referrer(engine)
    report(engine, tenant, row("t1", "F1", status="confirmed"))
    with Session(engine) as session:
        member_id = session.execute(text(
            "SELECT id FROM members WHERE tenant_id = :t AND external_id = 'R1'"),
            {"t": tenant.id}).scalar_one()
        (entry,) = member_statement(session, tenant.id, member_id)
    assert entry["kind"] == "referral" and entry["changes"] == {"available": 3000}
    assert entry["memo"] == "referral bonus earned: F1 referred by R1 (purchase t1)"
