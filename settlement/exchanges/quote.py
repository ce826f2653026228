"""What an exchange costs: the quote, computed from the policy alone (no database).

`points` buy `value` at the exit's rate, or at a live campaign's better rate; a campaign's
`bonus_percent` adds value for the same points instead. The points of a value are rounded
up once, to whole ledger units (yen), in the site's favour; a bonus is rounded down.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from settlement.errors import DomainError
from settlement.exchanges.calendar import crediting_date
from settlement.exchanges.kana import KanaError, to_zengin_name
from settlement.exchanges.policy import Campaign, Exit, Rate
from settlement.tenants.policy import TenantPolicy


class ExchangeError(DomainError):
    """A refused request: a code, the field at fault, a message."""

    def __init__(self, code: str, field: str | None, message: str):
        super().__init__(code, message, field)


@dataclass(frozen=True)
class Quote:
    exit: str
    kind: str
    partner: str
    value: int
    bonus_value: int
    points: int
    fee_points: int
    campaign: str | None
    requested_on: dt.date
    credit_on: dt.date
    destination: dict | None

    @property
    def points_debited(self) -> int:
        return self.points + self.fee_points


def live_campaign(policy: TenantPolicy, exit_name: str, moment: dt.datetime) -> Campaign | None:
    """The first campaign of the exit live at that moment, in policy order."""
    return next((c for c in policy.campaigns if c.exit == exit_name and c.live(moment)), None)


def _whole_positive(raw, field: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ExchangeError("not_an_integer", field, f"{field} is a whole number")
    if raw <= 0:
        raise ExchangeError("not_positive", field, f"{field} must be more than 0")
    return raw


def _value_of(exit_: Exit, rate: Rate, body: dict) -> tuple[int, str]:
    has_value, has_points = body.get("value") is not None, body.get("points") is not None
    if has_value == has_points:
        raise ExchangeError("value_or_points", "value",
                            "send either value (what to receive) or points (what to spend)")
    if has_value:
        return _whole_positive(body["value"], "value"), "value"
    points = _whole_positive(body["points"], "points")
    if (points * rate.value) % rate.points:
        raise ExchangeError("not_on_step", "points",
                            f"{points} points do not buy a whole value at {rate.points} "
                            f"points per {rate.value}")
    return points * rate.value // rate.points, "points"


def _check_value(exit_: Exit, value: int, field: str) -> None:
    if exit_.denominations and value not in exit_.denominations:
        raise ExchangeError("not_a_denomination", field, f"{value} is not one of "
                            f"{', '.join(map(str, exit_.denominations))}")
    if not exit_.denominations and value % exit_.step:
        raise ExchangeError("not_on_step", field,
                            f"{value} is not a multiple of {exit_.step}")
    if value < exit_.minimum_value:
        raise ExchangeError("below_minimum", field,
                            f"{value} is below the minimum exchange of {exit_.minimum_value}")
    if exit_.maximum_value is not None and value > exit_.maximum_value:
        raise ExchangeError("above_maximum", field,
                            f"{value} is above the maximum exchange of {exit_.maximum_value}")


def points_for(value: int, rate: Rate, points_per_unit: int) -> int:
    """Points for a value at a rate, rounded up once to whole ledger units."""
    per_unit = rate.value * points_per_unit
    return -(-value * rate.points // per_unit) * points_per_unit


ACCOUNT_TYPES = {"ordinary": "1", "current": "2", "savings": "4"}  # 普通, 当座, 貯蓄
_DIGITS = {"bank_code": 4, "branch_code": 3, "account_number": 7}
PARTNER_ACCOUNT = re.compile(r"[A-Za-z0-9_.@-]{1,64}", re.ASCII)


def check_destination(kind: str, raw) -> dict | None:
    """The destination an exit needs, normalised: a bank account, a partner account, or
    nothing (gift codes)."""
    if kind == "gift_code":
        if raw is not None:
            raise ExchangeError("unexpected_field", "destination",
                                "a gift code exchange has no destination")
        return None
    if not isinstance(raw, dict):
        raise ExchangeError("missing_destination", "destination",
                            f"a {kind} exchange needs a destination object")
    if kind == "points_transfer":
        account = raw.get("account")
        if set(raw) != {"account"} or not isinstance(account, str) \
                or not PARTNER_ACCOUNT.fullmatch(account):
            raise ExchangeError("invalid_destination", "destination.account",
                                "the partner account is 1 to 64 letters, digits or ._@-")
        return {"account": account}
    known = {*_DIGITS, "account_type", "account_name"}
    if set(raw) != known:
        raise ExchangeError("invalid_destination", "destination",
                            f"a bank account has exactly {', '.join(sorted(known))}")
    out = {}
    for field, width in _DIGITS.items():
        value = raw[field]
        if not isinstance(value, str) or len(value) != width or not value.isdigit() \
                or not value.isascii():
            raise ExchangeError("invalid_destination", f"destination.{field}",
                                f"{field} is {width} digits")
        out[field] = value
    if raw["account_type"] not in ACCOUNT_TYPES:
        raise ExchangeError("invalid_destination", "destination.account_type",
                            f"account_type is one of {', '.join(ACCOUNT_TYPES)}")
    out["account_type"] = raw["account_type"]
    try:
        out["account_name"] = to_zengin_name(raw["account_name"]) \
            if isinstance(raw["account_name"], str) else to_zengin_name("")
    except KanaError as exc:
        raise ExchangeError("invalid_destination", "destination.account_name",
                            str(exc)) from None
    return out


def make_quote(policy: TenantPolicy, body: dict, moment: dt.datetime) -> tuple[Quote, Campaign | None]:
    """The quote for a request body {exit, value | points, destination?} at `moment`."""
    extra = set(body) - {"exit", "value", "points", "destination", "use_campaign"}
    if extra:
        field = sorted(extra)[0]
        raise ExchangeError("unknown_field", field, f"unknown field {field}")
    name = body.get("exit")
    if not isinstance(name, str) or name not in policy.exits:
        raise ExchangeError("unknown_exit", "exit", f"no exit {str(name)[:64]!r}; "
                            f"exits: {', '.join(sorted(policy.exits)) or 'none'}")
    exit_ = policy.exits[name]
    if not exit_.enabled:
        raise ExchangeError("exit_disabled", "exit", f"exit {name} is disabled")
    wanted = body.get("use_campaign", True)
    if not isinstance(wanted, bool):
        raise ExchangeError("not_a_boolean", "use_campaign", "use_campaign is true or false")
    # A member may pass on a campaign (its budget is spent) for the exit's regular rate.
    campaign = live_campaign(policy, name, moment) if wanted else None
    rate = campaign.rate if campaign is not None and campaign.rate is not None else exit_.rate
    value, field = _value_of(exit_, rate, body)
    _check_value(exit_, value, field)
    destination = check_destination(exit_.kind, body.get("destination"))
    fee = exit_.fee_points
    if exit_.kind == "bank_transfer":
        fee = exit_.fee_points_by_bank.get(destination["bank_code"], fee)
    bonus = value * campaign.bonus_percent // 100 if campaign and campaign.bonus_percent else 0
    requested_on = moment.astimezone(ZoneInfo(policy.timezone)).date()
    return Quote(exit=name, kind=exit_.kind, partner=exit_.partner, value=value,
                 bonus_value=bonus, points=points_for(value, rate, policy.points.points_per_unit),
                 fee_points=fee, campaign=campaign.name if campaign else None,
                 requested_on=requested_on,
                 credit_on=crediting_date(exit_.crediting, requested_on),
                 destination=destination), campaign


def canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
