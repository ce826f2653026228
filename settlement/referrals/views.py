"""What referrals look like to members, operators and the demo.

A member's referrals (as friend and as referrer) carry the status of that member's own
bonus, in the words users know: pending, earned, paid, expired, and for operators held and
refused, each with a reason code and a sentence. `paid` is derived: an earned bonus that a
run item which succeeded paid (tied to it in run_item_lines, settlement/runs/lines.py).
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session, aliased

from settlement.models import (Commission, Member, Referral, ReferralBonus, RunItem,
                               RunItemLine)
from settlement.money import format_amount
from settlement.states import BonusStatus, ItemStatus, ReferralStatus, sql_in
from settlement.tenants.policy import TenantPolicy

REASONS = {
    "not_referred": "{friend} is no longer recorded as referred by anyone",
    "unknown_referrer": "referred_by names {referrer}, who is not a member",
    "referral_cycle": "{friend} and {referrer} refer each other, directly or through other "
                      "members: a referral cycle earns no bonus",
    "no_join_date": "{friend} has no joined_at, so the referral window cannot start",
    "no_terms": "no referral terms were in force on {friend}'s join date {joined_at}",
    "window_ended": "no qualifying purchase by {friend} before the window ended on "
                    "{window_end}",
    "shared_mailing_address": "{friend} and {referrer} share a mailing address: held for "
                              "review",
    "shared_payout_destination": "{friend} and {referrer} share a payout destination (PayPal "
                                 "e-mail, Amex or Bilt account): held for review",
    "rejected_on_review": "rejected on review by {reviewed_by}",
    "referrer_cap_reached": "{referrer} already has the yearly cap of {cap} referral bonuses "
                            "for {year}",
    "no_points_rate": "no {points_method} conversion rate was in force to value the points",
    "no_bonus": "the referral terms give no bonus on this side",
    "purchase_reversed": "the qualifying purchase was reversed after the bonuses were "
                         "earned: both were clawed back",
}


class _Blank(dict):
    def __missing__(self, key):
        return "?"


def _cap_year(bonuses: list) -> int | str:
    """The year whose cap refused the referrer's bonus: the year it would have been earned."""
    for b in bonuses:
        if b.reason == "referrer_cap_reached":
            day = b.confirmed_on or b.qualified_on
            return day.year if day else "?"
    return "?"


def reason_view(code: str | None, context: dict) -> dict | None:
    if code is None:
        return None
    template = REASONS.get(code, code.replace("_", " "))
    return {"code": code, "message": template.format_map(_Blank(context))}


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _paid_bonuses(session: Session, tenant_id: int, bonus_ids: set[int]) -> set[int]:
    """The bonuses among these that a run item which succeeded paid."""
    if not bonus_ids:
        return set()
    return set(session.scalars(
        select(RunItemLine.ref_id)
        .join(RunItem, (RunItem.tenant_id == RunItemLine.tenant_id)
              & (RunItem.id == RunItemLine.item_id))
        .where(RunItemLine.tenant_id == tenant_id, RunItemLine.kind == "referral_bonus",
               RunItemLine.ref_id.in_(sorted(bonus_ids)),
               RunItem.status == ItemStatus.SUCCEEDED)))


def _bonus_status(bonus: ReferralBonus, paid: set[int]) -> str:
    if bonus.status == BonusStatus.EARNED and bonus.id in paid:
        return "paid"
    return bonus.status


def _views(session: Session, tenant_id: int, policy: TenantPolicy, where,
           perspective: int | None, limit: int | None = None, after: int = 0) -> list[dict]:
    friend, referrer = aliased(Member), aliased(Member)
    query = (select(Referral, friend.external_id, friend.joined_at, referrer.external_id,
                    Commission.source, Commission.transaction_id, Commission.event_date,
                    Commission.status)
             .join(friend, (friend.tenant_id == Referral.tenant_id)
                   & (friend.id == Referral.friend_id))
             .outerjoin(referrer, (referrer.tenant_id == Referral.tenant_id)
                        & (referrer.id == Referral.referrer_id))
             .outerjoin(Commission, (Commission.tenant_id == Referral.tenant_id)
                        & (Commission.id == Referral.commission_id))
             .where(Referral.tenant_id == tenant_id, Referral.id > after, where)
             .order_by(Referral.id))
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()
    ids = [row[0].id for row in rows]
    bonuses: dict[int, list[ReferralBonus]] = defaultdict(list)
    for start in range(0, len(ids), 1000):
        for bonus in session.scalars(select(ReferralBonus).where(
                ReferralBonus.tenant_id == tenant_id,
                ReferralBonus.referral_id.in_(ids[start:start + 1000]))
                .order_by(ReferralBonus.id)):
            bonuses[bonus.referral_id].append(bonus)
    paid = _paid_bonuses(session, tenant_id, {b.id for bs in bonuses.values() for b in bs})
    txns = {}
    tried = {b.commission_id for bs in bonuses.values() for b in bs}
    if tried:
        txns = dict(session.execute(select(Commission.id, Commission.transaction_id).where(
            Commission.tenant_id == tenant_id, Commission.id.in_(sorted(tried)))).all())
    digits = policy.minor_digits
    views = []
    for (ref, friend_ext, joined_at, referrer_ext, source, txn, event_date,
         c_status) in rows:
        terms = (policy.referrals[ref.terms_index]
                 if ref.terms_index is not None and ref.terms_index < len(policy.referrals)
                 else None)
        context = {"friend": friend_ext, "referrer": ref.referrer_external_id,
                   "joined_at": _iso(joined_at), "window_end": _iso(ref.window_end),
                   "reviewed_by": ref.reviewed_by or "an operator",
                   "cap": terms.cap_per_referrer_per_year if terms else None,
                   "year": _cap_year(bonuses[ref.id])}
        qualified = ref.status in (ReferralStatus.PENDING, ReferralStatus.EARNED)
        current = [b for b in bonuses[ref.id] if b.commission_id == ref.commission_id
                   and b.status != BonusStatus.VOIDED] if qualified else []

        def bonus_view(b: ReferralBonus) -> dict:
            status = _bonus_status(b, paid)
            return {"member": friend_ext if b.side == "friend" else referrer_ext,
                    "amount": format_amount(b.amount, digits), "points": b.points,
                    "points_method": b.points_method, "status": status,
                    "confirmed_on": _iso(b.confirmed_on),
                    "reason": reason_view(b.reason, {
                        **context, "points_method": b.points_method})}

        pair = {b.side: bonus_view(b) for b in current}
        view = {"id": ref.id, "friend": friend_ext, "referrer": ref.referrer_external_id,
                "joined_at": _iso(joined_at), "window_end": _iso(ref.window_end),
                "status": ref.status, "stage": None,
                "reason": reason_view(ref.reason, context),
                "purchase": None if txn is None else {
                    "source": source, "transaction_id": txn,
                    "event_date": _iso(event_date), "status": c_status},
                "bonuses": pair,
                "voided": [{"side": b.side, "transaction_id": txns.get(b.commission_id),
                            "amount": format_amount(b.amount, digits)}
                           for b in bonuses[ref.id] if b.status == BonusStatus.VOIDED]}
        if ref.status == ReferralStatus.OPEN:
            view["status"], view["stage"] = "pending", "awaiting_purchase"
        elif ref.status == ReferralStatus.PENDING:
            view["stage"] = "awaiting_confirmation"
        if perspective is not None:
            role = "friend" if ref.friend_id == perspective else "referrer"
            view["role"] = role
            mine = pair.get(role)
            if mine is not None and mine["status"] == BonusStatus.REFUSED:
                view["status"], view["reason"] = "refused", mine["reason"]
            elif mine is not None and ref.status == ReferralStatus.EARNED:
                view["status"] = mine["status"]  # earned or paid
        elif ref.status == ReferralStatus.EARNED and pair and all(
                b["status"] == "paid" for b in pair.values()):
            view["status"] = "paid"
        views.append(view)
    return views


def member_referrals(session: Session, tenant_id: int, policy: TenantPolicy,
                     member_id: int) -> list[dict]:
    """The referrals of one member, as friend and as referrer, oldest first."""
    return _views(session, tenant_id, policy,
                  or_(Referral.friend_id == member_id, Referral.referrer_id == member_id),
                  perspective=member_id)


def list_referrals(session: Session, tenant_id: int, policy: TenantPolicy, *,
                   status: str | None, after: int, limit: int) -> list[dict]:
    """Referrals of the tenant for operators (e.g. status=held), in id order."""
    where = Referral.status == status if status else Referral.id > 0
    return _views(session, tenant_id, policy, where, perspective=None, limit=limit,
                  after=after)


def summary(session: Session, tenant_id: int) -> dict:
    """Counts and sums for the demo and operators: referrals by status (held and refused
    by reason), bonuses by side and status, and the referral expense."""
    p = {"t": tenant_id}
    statuses = {s: int(n) for s, n in session.execute(text(
        "SELECT status, count(*) FROM referrals WHERE tenant_id = :t GROUP BY status"), p)}
    closed = sql_in(ReferralStatus.HELD, ReferralStatus.REFUSED, ReferralStatus.EXPIRED)
    reasons = {(s, r): int(n) for s, r, n in session.execute(text(
        "SELECT status, reason, count(*) FROM referrals WHERE tenant_id = :t "
        f"AND status IN {closed} GROUP BY status, reason"), p)}
    bonuses = {(side, s): (int(n), int(a or 0), int(pts or 0))
               for side, s, n, a, pts in session.execute(text(
                   "SELECT side, status, count(*), sum(amount), sum(points) "
                   "FROM referral_bonuses WHERE tenant_id = :t GROUP BY side, status"), p)}
    expense = session.execute(text(
        "SELECT sum(amount) FROM postings WHERE tenant_id = :t AND account = "
        "'referral_expense'"), p).scalar()
    return {"statuses": statuses, "reasons": reasons, "bonuses": bonuses,
            "expense": -int(expense or 0)}
