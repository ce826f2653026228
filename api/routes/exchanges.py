"""Point exchanges: a member's requests through the tenant's exits, their states, a cancel;
and the members whose points expire soon."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app, request
from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import current, record, requires
from api.database import db
from api.errors import Problem
from api.schemas.exchanges import (EXPIRY_NOTICE_DAYS, ExchangeIn, ExchangeListOut, ExchangeOut,
                                   ExchangeQuery, ExpiringListOut, ExpiringQuery)
from api.tenancy import tenant_policy
from settlement.catalog.service import member_by_external_id
from settlement.exchanges.codes import code_key, unseal
from settlement.exchanges.expiry import external_ids, forecast
from settlement.exchanges.models import Exchange
from settlement.exchanges.quote import ExchangeError
from settlement.exchanges.service import (cancel_exchange, get_exchange, list_exchanges,
                                          request_exchange)
from settlement.ledger.service import member_balances
from settlement.money import format_amount
from settlement.states import ExchangeStatus

blp = Blueprint("exchanges", __name__, description="Point exchanges through exits")


def _member_id(external_id: str) -> int:
    member = member_by_external_id(db(), current().tenant_id, external_id)
    if member is None:
        raise Problem(404, "Not Found", f"no member {external_id}")
    return member.id


def _exchange_id(member_id: int, number: int) -> int:
    """Path ids are the member's exchange numbers; the internal id of this one."""
    found = db().scalar(select(Exchange.id).where(
        Exchange.tenant_id == current().tenant_id, Exchange.member_id == member_id,
        Exchange.number == number)) if 0 < number < 2 ** 63 else None
    if found is None:
        raise _no_exchange(number)
    return found


def _no_exchange(number: int) -> ExchangeError:
    """Another member's exchange is not found either (named by its number, never its id)."""
    return ExchangeError("not_found", None, f"no exchange {number}")


def _out(exchange: Exchange, policy, code: str | None = None) -> dict:
    return {"id": exchange.number, "exit": exchange.exit, "kind": exchange.kind,
            "partner": exchange.partner, "status": exchange.status, "value": exchange.value,
            "bonus_value": exchange.bonus_value, "points": exchange.points,
            "fee_points": exchange.fee_points, "points_debited": exchange.total_points,
            "amount": format_amount(exchange.debit, policy.minor_digits),
            "campaign": exchange.campaign, "requested_on": exchange.requested_on.isoformat(),
            "credit_on": exchange.credit_on.isoformat(),
            "failure_reason": exchange.failure_reason, "gift_code": code}


IDEMPOTENCY_HEADER = {"in": "header", "name": "Idempotency-Key", "required": True,
                      "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                      "description": "the same key and body answer the first exchange; the "
                                     "same key with another body answers 422"}


@blp.route("/members/<external_id>/exchanges", methods=["POST"])
@requires("operator")
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(ExchangeIn)
@blp.response(201, ExchangeOut)
@blp.alt_response(200, schema=ExchangeOut, description="the same Idempotency-Key and body "
                  "again: the first answer")
def post_exchange(body, external_id):
    policy = tenant_policy()
    member_id = _member_id(external_id)
    try:
        exchange, replayed = request_exchange(
            db(), current().tenant_id, policy, member_id, body,
            request.headers.get("Idempotency-Key"), dt.datetime.now(dt.timezone.utc))
    except ExchangeError:
        db().rollback()
        raise
    if not replayed:
        record("exchange.requested", "exchange", exchange.number,
               {"member": external_id, "exit": exchange.exit, "points": exchange.total_points})
    db().commit()
    return _out(exchange, policy), 200 if replayed else 201


@blp.route("/members/<external_id>/exchanges")
@requires("reader")
@blp.arguments(ExchangeQuery, location="query")
@blp.response(200, ExchangeListOut)
def list_member_exchanges(query, external_id):
    policy = tenant_policy()
    rows = list_exchanges(db(), current().tenant_id, _member_id(external_id), query["status"],
                          query["limit"])
    return {"member": external_id, "exchanges": [_out(e, policy) for e in rows]}


@blp.route("/members/<external_id>/exchanges/<int:exchange_id>")
@requires("reader")
@blp.response(200, ExchangeOut)
def get_member_exchange(external_id, exchange_id):
    """The member's own look-up: the only answer that carries a delivered gift code.
    `exchange_id` is the member's exchange number, as the request answered it."""
    policy = tenant_policy()
    member_id = _member_id(external_id)
    try:
        exchange = get_exchange(db(), current().tenant_id, member_id,
                                _exchange_id(member_id, exchange_id))
    except ExchangeError:
        raise _no_exchange(exchange_id) from None
    code = None
    if exchange.status == ExchangeStatus.DELIVERED and exchange.code_cipher is not None:
        key = code_key(current_app.config["SETTLE"])
        code = unseal(key, exchange.tenant_id, exchange.id, exchange.code_cipher)
        record("exchange.code_shown", "exchange", exchange.number, {"member": external_id})
        db().commit()
    return _out(exchange, policy, code)


@blp.route("/members/<external_id>/exchanges/<int:exchange_id>/cancel", methods=["POST"])
@requires("operator")
@blp.response(200, ExchangeOut)
def cancel_member_exchange(external_id, exchange_id):
    policy = tenant_policy()
    member_id = _member_id(external_id)
    try:
        exchange = cancel_exchange(db(), current().tenant_id, policy, member_id,
                                   _exchange_id(member_id, exchange_id))
    except ExchangeError as exc:
        db().rollback()
        raise (_no_exchange(exchange_id) if exc.code == "not_found" else exc) from None
    record("exchange.cancelled", "exchange", exchange.number, {"member": external_id})
    db().commit()
    return _out(exchange, policy)


def _today(policy) -> dt.date:
    return dt.datetime.now(ZoneInfo(policy.timezone)).date()


def points_balance(member_id: int, policy) -> dict:
    """The balance in points, with what expires within 30 days (GET .../balance)."""
    per = policy.points.points_per_unit
    held = member_balances(db(), current().tenant_id, member_id)
    soon = forecast(db(), current().tenant_id, policy, _today(policy), EXPIRY_NOTICE_DAYS,
                    member_id)
    return {"points_per_unit": per, "available": held["available"] * per,
            "reserved": held["reserved"] * per, "exchanged": held.get("exchanged", 0) * per,
            "expired": held.get("breakage", 0) * per,
            "expiring": {"points": soon[0].amount * per, "on": soon[0].on.isoformat()}
            if soon else None}


@blp.route("/expiring")
@requires("reader")
@blp.arguments(ExpiringQuery, location="query")
@blp.response(200, ExpiringListOut)
def list_expiring(query):
    """Members whose points expire within `within` days: whom to remind, of what, when."""
    policy = tenant_policy()
    tenant_id = current().tenant_id
    soon = forecast(db(), tenant_id, policy, _today(policy), query["within"])
    names = external_ids(db(), tenant_id, [s.member_id for s in soon])
    per = policy.points.points_per_unit
    return {"within": query["within"], "members": [
        {"member": names[s.member_id], "points": s.amount * per,
         "amount": format_amount(s.amount, policy.minor_digits),
         "expires_on": s.on.isoformat()} for s in soon]}
