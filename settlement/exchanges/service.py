"""Exchange requests: quote, refuse or reserve; cancel; the ledger moves of each outcome.

A request runs in one transaction that first takes the member's row (an UPDATE, so that
PostgreSQL and SQLite both serialize a member's exchanges, cancellations and expiry from
there on), then checks the monthly cap and the available balance, takes the campaign's
first-come budget with one guarded UPDATE (concurrent requests queue on its row and each
sees what the one before granted), inserts the exchange and reserves its points:
available -> reserved, one entry keyed by the exchange. Nothing is half-applied: any
refusal rolls the whole transaction back.

The member's buckets for exchanges (ledger units, yen; points = yen * points_per_unit):
`reserved` while requested or processing, `exchanged` once delivered (as `paid` is for
payouts), back to `available` when cancelled or failed. Expiry moves `available` to the
member's `breakage` bucket (the site's income, kept per member so that a member's postings
still sum to what they earned).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from settlement.exchanges.guard import hold_against_planning, planned_unreserved
from settlement.exchanges.models import LIVE, Exchange
from settlement.exchanges.quote import ExchangeError, Quote, canonical, make_quote
from settlement.ledger.service import member_balances
from settlement.ledger.writer import Leg, post_entry, post_new_entry
from settlement.models import Member
from settlement.states import ExchangeStatus
from settlement.tenants.policy import TenantPolicy

IDEMPOTENCY_KEY_MAX = 200


def lock_member(session: Session, tenant_id: int, member_id: int) -> None:
    """Take the member's row for the rest of the transaction."""
    session.execute(update(Member).where(Member.tenant_id == tenant_id, Member.id == member_id)
                    .values(updated_at=Member.updated_at))


def _check_key(key: str | None) -> str:
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isascii() or not key.isprintable():
        raise ExchangeError("idempotency_key", "Idempotency-Key",
                            f"send an Idempotency-Key header of 1 to {IDEMPOTENCY_KEY_MAX} "
                            "printable ASCII characters")
    return key


def _replay(session: Session, tenant_id: int, member_id: int, key: str,
            digest: str) -> Exchange | None:
    found = session.scalar(select(Exchange).where(
        Exchange.tenant_id == tenant_id, Exchange.member_id == member_id,
        Exchange.idempotency_key == key))
    if found is not None and found.request_hash != digest:
        raise ExchangeError("idempotency_key_reused", "Idempotency-Key",
                            "this Idempotency-Key was used for another request body")
    return found


def request_exchange(session: Session, tenant_id: int, policy: TenantPolicy, member_id: int,
                     body: dict, key: str | None, moment: dt.datetime) -> tuple[Exchange, bool]:
    """Quote and reserve, or refuse (ExchangeError). Returns (exchange, replayed): the same
    key with the same body answers the first exchange again."""
    key = _check_key(key)
    digest = hashlib.sha256(canonical(body).encode()).hexdigest()
    hold_against_planning(session, tenant_id)  # settlement/exchanges/guard.py
    lock_member(session, tenant_id, member_id)
    # Under the member's lock: a twin request with this key has committed or not started.
    found = _replay(session, tenant_id, member_id, key, digest)
    if found is not None:
        return found, True
    quote, campaign = make_quote(policy, body, moment)
    _check_monthly_cap(session, tenant_id, policy, member_id, quote)
    debit = quote.points_debited // policy.points.points_per_unit
    available = member_balances(session, tenant_id, member_id)["available"]
    planned, payout = planned_unreserved(session, tenant_id, member_id)
    if available >= debit > available - planned:
        unit = policy.points.points_per_unit
        raise ExchangeError("held_for_payout", "points" if "points" in body else "value",
                            f"{planned * unit} of your {available * unit} points are being "
                            f"paid out on {payout.isoformat()}; this exchange needs "
                            f"{quote.points_debited} points (fee included)")
    if debit > available:
        have = available * policy.points.points_per_unit
        raise ExchangeError("insufficient_points", "points" if "points" in body else "value",
                            f"this exchange needs {quote.points_debited} points "
                            f"(fee included); {max(have, 0)} are available")
    if campaign is not None:
        _take_campaign(session, tenant_id, campaign, member_id, quote.value)
    exchange = Exchange(
        tenant_id=tenant_id, number=_next_number(session, tenant_id, member_id),
        member_id=member_id, exit=quote.exit, kind=quote.kind,
        partner=quote.partner, status=ExchangeStatus.REQUESTED, value=quote.value,
        bonus_value=quote.bonus_value, points=quote.points, fee_points=quote.fee_points,
        debit=debit, campaign=quote.campaign,
        destination=None if quote.destination is None else json.dumps(quote.destination,
                                                                        ensure_ascii=False),
        idempotency_key=key, request_hash=digest, requested_on=quote.requested_on,
        credit_on=quote.credit_on, attempts=0)
    session.add(exchange)
    session.flush()
    _reserve(session, policy, exchange, quote)
    return exchange, False


def _next_number(session: Session, tenant_id: int, member_id: int) -> int:
    """The member's next exchange number (what the API calls the exchange: paths name the
    member, so it says nothing about other members or tenants). Safe because the member's
    row is locked: the member's requests come one at a time, and they need no lock of the
    tenant's (the unique (tenant, member, number) key is the backstop)."""
    return session.scalar(select(func.coalesce(func.max(Exchange.number), 0) + 1).where(
        Exchange.tenant_id == tenant_id, Exchange.member_id == member_id))


def _reserve(session: Session, policy: TenantPolicy, exchange: Exchange, quote: Quote) -> None:
    """available -> reserved. The exchange is new, so is its entry's key: no look-up first."""
    post_new_entry(session, exchange.tenant_id, f"exchange:{exchange.id}:reserve",
                   "exchange_reserve",
                   _move(policy, exchange.member_id, exchange.debit, "available", "reserved"),
                   memo=f"exchange {exchange.number} ({quote.exit}): "
                        f"{quote.points_debited} points reserved")


def _move(policy: TenantPolicy, member_id: int, amount: int, source: str, target: str):
    return [Leg(source, member_id, policy.currency, -amount),
            Leg(target, member_id, policy.currency, amount)]


def _month(day: dt.date) -> tuple[dt.date, dt.date]:
    start = day.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


def _check_monthly_cap(session: Session, tenant_id: int, policy: TenantPolicy,
                       member_id: int, quote: Quote) -> None:
    cap = policy.exits[quote.exit].monthly_cap_value
    if cap is None:
        return
    start, end = _month(quote.requested_on)
    used = session.scalar(select(func.coalesce(func.sum(Exchange.value), 0)).where(
        Exchange.tenant_id == tenant_id, Exchange.member_id == member_id,
        Exchange.exit == quote.exit, Exchange.status.in_(LIVE),
        Exchange.requested_on >= start, Exchange.requested_on < end))
    if used + quote.value > cap:
        raise ExchangeError("over_monthly_cap", "value",
                            f"{quote.exit} allows {cap} a month per member; {used} used "
                            f"this month, {quote.value} asked")


def _take_campaign(session: Session, tenant_id: int, campaign, member_id: int,
                   value: int) -> None:
    if campaign.per_member_count is not None:
        mine = session.scalar(select(func.count()).select_from(Exchange).where(
            Exchange.tenant_id == tenant_id, Exchange.member_id == member_id,
            Exchange.campaign == campaign.name, Exchange.status.in_(LIVE)))
        if mine >= campaign.per_member_count:
            raise ExchangeError("campaign_member_cap", "exit",
                                f"campaign {campaign.name} allows {campaign.per_member_count} "
                                "exchanges per member; send use_campaign: false for the "
                                "regular rate")
    p = {"t": tenant_id, "c": campaign.name, "v": value, "bv": campaign.budget_value,
         "bc": campaign.budget_count}
    session.execute(text("INSERT INTO campaign_usage (tenant_id, campaign, used_value, "
                         "used_count) VALUES (:t, :c, 0, 0) ON CONFLICT DO NOTHING"), p)
    # One guarded statement: concurrent requests queue on the row, and each re-reads the
    # count the previous one committed before deciding (PostgreSQL's READ COMMITTED
    # re-checks the WHERE on the updated row), so the budget is never exceeded.
    granted = session.execute(text(
        "UPDATE campaign_usage SET used_count = used_count + 1, used_value = used_value + :v "
        "WHERE tenant_id = :t AND campaign = :c "
        "AND (CAST(:bc AS BIGINT) IS NULL OR used_count + 1 <= :bc) "
        "AND (CAST(:bv AS BIGINT) IS NULL OR used_value + :v <= :bv) RETURNING used_count"),
        p).first()
    if granted is None:
        raise ExchangeError("campaign_budget_exhausted", "exit",
                            f"campaign {campaign.name} has run out of its budget; send "
                            "use_campaign: false for the regular rate")


def _release_campaign(session: Session, exchange: Exchange) -> None:
    if exchange.campaign is None:
        return
    session.execute(text(
        "UPDATE campaign_usage SET used_count = used_count - 1, used_value = used_value - :v "
        "WHERE tenant_id = :t AND campaign = :c"),
        {"t": exchange.tenant_id, "c": exchange.campaign, "v": exchange.value})


def cancel_exchange(session: Session, tenant_id: int, policy: TenantPolicy, member_id: int,
                    exchange_id: int) -> Exchange:
    """A member's cancel, while the exchange is still `requested`: the points go back."""
    lock_member(session, tenant_id, member_id)
    exchange = get_exchange(session, tenant_id, member_id, exchange_id)
    if exchange.status != ExchangeStatus.REQUESTED:
        raise ExchangeError("not_cancellable", None,
                            f"exchange {exchange.number} is {exchange.status}; only a requested "
                            "exchange can be cancelled")
    # Guarded on `requested`: a fulfilment job may have claimed it since we read it.
    if not return_points(session, policy, exchange, ExchangeStatus.CANCELLED,
                         "cancelled by the member", from_states=(ExchangeStatus.REQUESTED,)):
        raise ExchangeError("not_cancellable", None,
                            f"exchange {exchange.number} is being processed; it cannot be "
                            "cancelled any more")
    return exchange


def return_points(session: Session, policy: TenantPolicy, exchange: Exchange,
                  status: ExchangeStatus, reason: str,
                  from_states=(ExchangeStatus.REQUESTED, ExchangeStatus.PROCESSING)) -> bool:
    """cancelled or failed: the compensating entry reserved -> available, in the same
    transaction as the state change, and the campaign's budget given back. False if the
    exchange had left `from_states` already."""
    moved = session.execute(update(Exchange).where(
        Exchange.tenant_id == exchange.tenant_id, Exchange.id == exchange.id,
        Exchange.status.in_(from_states))
        .values(status=status, failure_reason=reason[:200], updated_at=func.now())
        .execution_options(synchronize_session=False))
    if moved.rowcount != 1:
        return False
    _release_campaign(session, exchange)
    post_entry(session, exchange.tenant_id, f"exchange:{exchange.id}:{status}",
               f"exchange_{status}",
               _move(policy, exchange.member_id, exchange.debit, "reserved", "available"),
               f"exchange {exchange.number} ({exchange.exit}) {status}: points back to balance")
    session.refresh(exchange)
    return True


def deliver(session: Session, policy: TenantPolicy, exchange: Exchange, **provider) -> bool:
    """processing -> delivered: reserved -> exchanged. False if it had moved already."""
    moved = session.execute(update(Exchange).where(
        Exchange.tenant_id == exchange.tenant_id, Exchange.id == exchange.id,
        Exchange.status == ExchangeStatus.PROCESSING)
        .values(status=ExchangeStatus.DELIVERED, updated_at=func.now(), **provider)
        .execution_options(synchronize_session=False))
    if moved.rowcount != 1:
        return False
    post_entry(session, exchange.tenant_id, f"exchange:{exchange.id}:delivered",
               "exchange_delivered",
               _move(policy, exchange.member_id, exchange.debit, "reserved", "exchanged"),
               f"exchange {exchange.number} ({exchange.exit}) delivered")
    session.refresh(exchange)
    return True


def get_exchange(session: Session, tenant_id: int, member_id: int, exchange_id: int) -> Exchange:
    exchange = session.scalar(select(Exchange).where(
        Exchange.tenant_id == tenant_id, Exchange.id == exchange_id,
        Exchange.member_id == member_id))
    if exchange is None:
        raise ExchangeError("not_found", None, f"no exchange {exchange_id}")
    return exchange


def list_exchanges(session: Session, tenant_id: int, member_id: int, status: str | None = None,
                   limit: int = 100) -> list[Exchange]:
    query = select(Exchange).where(Exchange.tenant_id == tenant_id,
                                   Exchange.member_id == member_id)
    if status is not None:
        query = query.where(Exchange.status == status)
    return list(session.scalars(query.order_by(Exchange.id.desc()).limit(limit)))
