"""Points expiry: `inactivity` (everything available expires `days` after the member's last
earning or exchange) or `fixed_term` (each month's earnings expire `months` months after
that month ends, the oldest spent first).

A member's earnings are the entries that raise the member's total (the sum of their
buckets): commissions, bonuses. Moves between the member's own buckets (reserving, paying,
exchanging, expiring) leave it unchanged; reversals lower it. For `fixed_term`, what is
gone (spent, reserved, expired, reversed) = earned - available, and FIFO means it came out
of the oldest months first, so what must expire by a date is the earnings of the months
ended by then less what is gone.

The daily job posts one entry per member and date (key `expiry:<member>:<date>`):
available -> the member's `breakage` bucket, the site's income. It takes the member's row
first, as exchange requests do, so an exchange and the expiry of the same points are one
after the other, never both.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.exchanges.models import Exchange
from settlement.exchanges.guard import hold_against_planning, planned_unreserved
from settlement.exchanges.service import lock_member
from settlement.ledger.service import member_balances
from settlement.ledger.writer import Leg, post_entry
from settlement.models import JournalEntry, Member, Posting
from settlement.tenants.policy import TenantPolicy


@dataclass(frozen=True)
class Expiring:
    member_id: int
    amount: int  # ledger units (yen)
    on: dt.date  # when it expires (or expired, for what is due)


@dataclass
class _History:
    earned_by_day: dict[dt.date, int]
    available: int
    last_exchange: dt.date | None

    @property
    def last_activity(self) -> dt.date | None:
        days = [d for d in (max(self.earned_by_day, default=None), self.last_exchange) if d]
        return max(days, default=None)


def _histories(session: Session, tenant_id: int, policy: TenantPolicy,
               member_id: int | None = None) -> dict[int, _History]:
    zone = ZoneInfo(policy.timezone)
    scope = [Posting.tenant_id == tenant_id, Posting.member_id.is_not(None)]
    if member_id is not None:
        scope.append(Posting.member_id == member_id)
    nets = session.execute(
        select(Posting.member_id, JournalEntry.created_at, func.sum(Posting.amount))
        .join(JournalEntry, (JournalEntry.tenant_id == Posting.tenant_id)
              & (JournalEntry.id == Posting.entry_id))
        .where(*scope).group_by(Posting.member_id, JournalEntry.id, JournalEntry.created_at))
    out: dict[int, _History] = defaultdict(lambda: _History(defaultdict(int), 0, None))
    for member, created_at, net in nets:
        if net > 0:
            if created_at.tzinfo is None:  # SQLite keeps UTC without the offset
                created_at = created_at.replace(tzinfo=dt.timezone.utc)
            out[member].earned_by_day[created_at.astimezone(zone).date()] += int(net)
    available = select(Posting.member_id, func.sum(Posting.amount)).where(
        *scope, Posting.account == "available").group_by(Posting.member_id)
    for member, total in session.execute(available):
        out[member].available = int(total)
    exchanged = select(Exchange.member_id, func.max(Exchange.requested_on)).where(
        Exchange.tenant_id == tenant_id).group_by(Exchange.member_id)
    if member_id is not None:
        exchanged = exchanged.where(Exchange.member_id == member_id)
    for member, day in session.execute(exchanged):
        if member in out:
            out[member].last_exchange = day
    return out


def _month_end_plus(day: dt.date, months: int) -> dt.date:
    """The day after the end of `day`'s month, `months` months on: when it expires."""
    index = day.year * 12 + day.month - 1 + months + 1
    return dt.date(index // 12, index % 12 + 1, 1)


def _expiring(policy: TenantPolicy, history: _History, by: dt.date) -> tuple[int, dt.date] | None:
    """What expires on or before `by`, and the first date of it."""
    rule = policy.points.expiry
    if rule is None or history.available <= 0:
        return None
    if rule.rule == "inactivity":
        last = history.last_activity
        if last is None:
            return None
        on = last + dt.timedelta(days=rule.days)
        return (history.available, on) if on <= by else None
    earned = sum(history.earned_by_day.values())
    gone = earned - history.available
    due, first = 0, None
    for day in sorted(history.earned_by_day):
        on = _month_end_plus(day, rule.months)
        if on <= by:
            due += history.earned_by_day[day]
            first = first or on
    amount = min(history.available, due - gone)
    return (amount, first) if amount > 0 else None


def forecast(session: Session, tenant_id: int, policy: TenantPolicy, today: dt.date,
             within: int, member_id: int | None = None) -> list[Expiring]:
    """Points that will have expired within `within` days of today (0: due now)."""
    by = today + dt.timedelta(days=within)
    out = []
    for member, history in sorted(_histories(session, tenant_id, policy, member_id).items()):
        found = _expiring(policy, history, by)
        if found is not None:
            out.append(Expiring(member, found[0], max(found[1], today)))
    return out


def expire_points(session: Session, tenant_id: int, policy: TenantPolicy,
                  today: dt.date) -> list[Expiring]:
    """Post today's expiries, one entry per member; running it again posts nothing new."""
    posted = []
    hold_against_planning(session, tenant_id)  # points a run will pay never expire
    for due in forecast(session, tenant_id, policy, today, 0):
        lock_member(session, tenant_id, due.member_id)
        # Read again under the member's lock: an exchange may have spent the points.
        fresh = forecast(session, tenant_id, policy, today, 0, due.member_id)
        if not fresh:
            continue
        planned, _ = planned_unreserved(session, tenant_id, due.member_id)
        amount = min(fresh[0].amount, member_balances(session, tenant_id,
                                                      due.member_id)["available"] - planned)
        if amount <= 0:
            continue
        entry = post_entry(session, tenant_id, f"expiry:{due.member_id}:{today.isoformat()}",
                           "points_expired",
                           [Leg("available", due.member_id, policy.currency, -amount),
                            Leg("breakage", due.member_id, policy.currency, amount)],
                           f"{amount * policy.points.points_per_unit} points expired "
                           f"({policy.points.expiry.rule})")
        if entry is not None:
            posted.append(Expiring(due.member_id, amount, today))
    return posted


def external_ids(session: Session, tenant_id: int, member_ids: list[int]) -> dict[int, str]:
    if not member_ids:
        return {}
    return dict(session.execute(select(Member.id, Member.external_id).where(
        Member.tenant_id == tenant_id, Member.id.in_(member_ids))).all())
