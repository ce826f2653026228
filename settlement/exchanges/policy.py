"""The exchange part of a tenant policy: what a point is worth, the exits members exchange
points through, the campaigns that make an exit cheaper for a while, and when points expire.

The ledger keeps the tenant currency's minor units (yen); a point is `points_per_unit` of
them at most one yen (1 point = 1 yen at Hapitas and Moppy, 10 points = 1 yen at Gendama),
so a balance of B yen is B * points_per_unit points. Every points figure of an exit (fees,
the points of a rate) is therefore a multiple of `points_per_unit`: a debit is always a
whole number of yen and nothing is rounded on the way into the ledger.
"""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EXIT_KINDS = ("gift_code", "bank_transfer", "points_transfer")
BANK_CODE = r"^[0-9]{4}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rate(_Strict):
    """`points` points buy `value` units of what the exit delivers (yen of a gift card,
    PayPay points, PeX points...)."""

    points: int = Field(gt=0)
    value: int = Field(gt=0)


class Crediting(_Strict):
    """`instant`, or `business_days` Japanese business days after the request."""

    kind: Literal["instant", "business_days"] = "instant"
    days: int = Field(default=0, ge=0, le=30)

    @model_validator(mode="after")
    def _days_match_kind(self) -> "Crediting":
        if (self.kind == "instant") != (self.days == 0):
            raise ValueError("instant crediting has no days; business_days needs 1 or more")
        return self


class Originator(_Strict):
    """The site's own account, as a Zengin transfer file's header names it."""

    client_code: str = Field(pattern=r"^[0-9]{10}$")  # 依頼人コード, given by the bank
    name: str = Field(min_length=1, max_length=40)  # 依頼人名, katakana
    bank_code: str = Field(pattern=BANK_CODE)
    branch_code: str = Field(pattern=r"^[0-9]{3}$")
    account_type: Literal["ordinary", "current", "savings"] = "ordinary"
    account_number: str = Field(pattern=r"^[0-9]{7}$")


class Exit(_Strict):
    kind: Literal["gift_code", "bank_transfer", "points_transfer"]
    partner: str = Field(pattern=r"^[a-z0-9_]{2,32}$")
    enabled: bool = True
    rate: Rate
    fee_points: int = Field(default=0, ge=0)
    # Bank transfers: the fee by the destination's 4-digit bank code (others: fee_points).
    fee_points_by_bank: dict[str, int] = {}
    minimum_value: int = Field(default=1, gt=0)
    maximum_value: int | None = Field(default=None, gt=0)
    denominations: tuple[int, ...] = ()  # the only values allowed, when set
    step: int = Field(default=1, gt=0)  # otherwise a value is a multiple of this
    monthly_cap_value: int | None = Field(default=None, gt=0)  # per member, calendar month
    crediting: Crediting = Crediting()
    originator: Originator | None = None  # bank transfers: the file's header

    @model_validator(mode="after")
    def _coherent(self) -> "Exit":
        if (self.kind == "bank_transfer") != (self.originator is not None):
            raise ValueError("a bank transfer exit names its originator (and only it)")
        if self.maximum_value is not None and self.maximum_value < self.minimum_value:
            raise ValueError("maximum_value is below minimum_value")
        if any(d <= 0 for d in self.denominations):
            raise ValueError("denominations are positive")
        for code, fee in self.fee_points_by_bank.items():
            if len(code) != 4 or not code.isdigit() or not code.isascii() or fee < 0:
                raise ValueError(f"fee_points_by_bank: {code!r} is not a 4-digit bank code "
                                 "with a fee of 0 or more")
        if self.fee_points_by_bank and self.kind != "bank_transfer":
            raise ValueError("fee_points_by_bank is for bank transfers")
        return self


class Campaign(_Strict):
    """A preferential rate on one exit for a window: a better `rate`, or `bonus_percent`
    more value for the same points. An optional first-come `budget_value` (value granted)
    or `budget_count` (exchanges granted), and a cap of exchanges per member."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$")
    exit: str
    starts: dt.datetime
    ends: dt.datetime  # exclusive
    rate: Rate | None = None
    bonus_percent: int | None = Field(default=None, gt=0, le=100)
    budget_value: int | None = Field(default=None, gt=0)
    budget_count: int | None = Field(default=None, gt=0)
    per_member_count: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _coherent(self) -> "Campaign":
        if (self.rate is None) == (self.bonus_percent is None):
            raise ValueError("a campaign has either a rate or a bonus_percent")
        if self.starts.tzinfo is None or self.ends.tzinfo is None:
            raise ValueError("starts and ends carry a UTC offset")
        if self.ends <= self.starts:
            raise ValueError("ends is not after starts")
        if self.budget_value is not None and self.budget_count is not None:
            raise ValueError("a budget is by value or by count, not both")
        return self

    def live(self, moment: dt.datetime) -> bool:
        return self.starts <= moment < self.ends


class Expiry(_Strict):
    """`inactivity`: every point expires `days` after the member's last earning or
    exchange. `fixed_term`: the points earned in a month expire `months` months after the
    end of that month, oldest first."""

    rule: Literal["inactivity", "fixed_term"]
    days: int | None = Field(default=None, gt=0, le=3650)
    months: int | None = Field(default=None, gt=0, le=120)

    @model_validator(mode="after")
    def _term_for_rule(self) -> "Expiry":
        if self.rule == "inactivity" and (self.days is None or self.months is not None):
            raise ValueError("inactivity expiry takes days")
        if self.rule == "fixed_term" and (self.months is None or self.days is not None):
            raise ValueError("fixed_term expiry takes months")
        return self


def check_exchanges(points_per_unit: int, exits: dict[str, Exit],
                    campaigns: tuple[Campaign, ...]) -> None:
    """The rules that span exits and campaigns (raises ValueError naming the place)."""
    for name, exit_ in exits.items():
        figures = [("rate.points", exit_.rate.points), ("fee_points", exit_.fee_points)]
        figures += [(f"fee_points_by_bank.{b}", f) for b, f in exit_.fee_points_by_bank.items()]
        for where, points in figures:
            if points % points_per_unit:
                raise ValueError(f"exits.{name}.{where}: {points} is not a multiple of "
                                 f"points.points_per_unit ({points_per_unit})")
    names = set()
    for i, campaign in enumerate(campaigns):
        if campaign.name in names:
            raise ValueError(f"campaigns[{i}]: the name {campaign.name!r} is used twice")
        names.add(campaign.name)
        if campaign.exit not in exits:
            raise ValueError(f"campaigns[{i}].exit: no exit {campaign.exit!r}")
        if campaign.rate is not None and campaign.rate.points % points_per_unit:
            raise ValueError(f"campaigns[{i}].rate.points is not a multiple of "
                             f"points.points_per_unit ({points_per_unit})")
