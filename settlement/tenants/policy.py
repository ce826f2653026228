"""The tenant policy file: what `settle tenant apply FILE` reads (JSON or TOML).

Every business number of DOMAIN.md is here, not in code. Amounts are decimal strings in the
tenant currency's major units ("5.01", "1000" for JPY); rates are percent strings; points are
integers. The documented schema is in docs/tenant-policy.md.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from settlement.exchanges.policy import Campaign, Exit, Expiry, check_exchanges
from settlement.money import CURRENCY_MINOR_DIGITS, ROUNDING_MODES, AmountError, parse_amount

PAYOUT_METHODS = ("check", "paypal", "amex_mr", "bilt")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cutoff(_Strict):
    """Which confirmed earnings a payout date includes.

    `confirmed_before_date`: everything confirmed before the payout date (today's help page).
    `quarter_lag`: earnings posted in the calendar quarter that ended `lag_days` or more
    before the payout date (the Ebates-era rule: Oct-Dec paid Feb 15).
    """

    rule: Literal["confirmed_before_date", "quarter_lag"] = "confirmed_before_date"
    lag_days: int = Field(default=45, ge=0, le=366)


class AmexMR(_Strict):
    enabled: bool = True
    points_per_major_unit: int = Field(default=100, gt=0)
    minimum_points: int = Field(default=500, ge=0)
    eligible_cards: tuple[str, ...] = ("gold", "platinum", "green")


class BiltRate(_Strict):
    """Points per major unit from `valid_from` (inclusive) for the given tiers (empty: all)."""

    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    tiers: tuple[str, ...] = ()
    points_per_major_unit: int = Field(gt=0)


class Bilt(_Strict):
    enabled: bool = True
    rates: tuple[BiltRate, ...] = ()


class SimpleMethod(_Strict):
    enabled: bool = True


class Methods(_Strict):
    check: SimpleMethod = SimpleMethod()
    paypal: SimpleMethod = SimpleMethod()
    amex_mr: AmexMR = AmexMR(enabled=False)
    bilt: Bilt = Bilt(enabled=False)

    def enabled(self) -> list[str]:
        return [name for name in PAYOUT_METHODS if getattr(self, name).enabled]


class Payouts(_Strict):
    dates: tuple[str, ...] = Field(description="MM-DD of each payout date in the year")
    cutoff: Cutoff = Cutoff()
    minimum: str = Field(description="smallest payable balance, major units, inclusive")
    require_mailing_address: bool = True
    methods: Methods = Methods()

    @field_validator("dates")
    @classmethod
    def _month_days(cls, dates: tuple[str, ...]) -> tuple[str, ...]:
        for d in dates:
            try:
                dt.date.fromisoformat(f"2024-{d}")  # a leap year admits 02-29
            except ValueError:
                raise ValueError(f"payout date {d!r} is not MM-DD") from None
        return tuple(sorted(set(dates)))


class Bonus(_Strict):
    """A referral bonus: cash in the tenant currency, or points of a points method."""

    amount: str | None = None
    points: int | None = Field(default=None, gt=0)
    points_method: Literal["amex_mr", "bilt"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Bonus":
        if (self.amount is None) == (self.points is None):
            raise ValueError("a bonus is either an amount or points")
        if self.points is not None and self.points_method is None:
            raise ValueError("a points bonus names its points_method")
        return self


class ReferralTerms(_Strict):
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    referrer_bonus: Bonus
    friend_bonus: Bonus
    minimum_purchase: str = "30.00"
    window_days: int = Field(default=90, gt=0)
    # Referrer bonuses per calendar year in which they are earned (tenant time zone).
    cap_per_referrer_per_year: int | None = Field(default=None, gt=0)
    # A qualifying purchase reversed after the bonuses were earned claws both back (buy and
    # return is the common referral fraud), unless the terms keep them.
    keep_bonus_after_reversal: bool = False


class Points(_Strict):
    expire_after_days: int | None = Field(default=None, gt=0)
    # Points tenants (docs in settlement/exchanges/policy.py): points per yen of the ledger.
    points_per_unit: int = Field(default=1, ge=1, le=1000)
    expiry: Expiry | None = None


NETWORKS = ("cj", "impact", "awin", "rakuten")
# Where each network carries the member's id when the portal puts it in a sub-id of its
# own choosing; the first is the default.
MEMBER_FIELDS = {
    "cj": ("shopperId",),
    "impact": ("SubId1", "SubId2", "SubId3", "SharedId"),
    "awin": ("clickRef", "clickRef2", "clickRef3", "clickRef4", "clickRef5", "clickRef6"),
    "rakuten": ("u1",),
}
MAX_HOLD_DAYS = 730


class Network(_Strict):
    """How a tenant deals with one network (docs/NETWORKS.md)."""

    # The network accounts whose reports the tenant receives (a CJ CID, an Impact account
    # SID, an Awin publisher id, a Rakuten SID); none declared: the one implicit account
    # named after the network. A transaction's identity is (network account, its id).
    accounts: tuple[str, ...] = Field(default=(), max_length=100)
    # A line the network sends without a status confirms this many days after its event
    # date unless a later report reverses it; unset: it stays pending until a status comes.
    confirm_after_days: int | None = Field(default=None, ge=0, le=MAX_HOLD_DAYS)
    member_field: str | None = None

    @field_validator("accounts")
    @classmethod
    def _account_ids(cls, accounts: tuple[str, ...]) -> tuple[str, ...]:
        for account in accounts:
            if not ACCOUNT_ID.fullmatch(account):
                raise ValueError(f"account {account[:80]!r} is not 1 to 64 letters, digits, "
                                 "dots, dashes or underscores")
        if len(set(accounts)) != len(accounts):
            raise ValueError("an account is declared twice")
        return accounts


ACCOUNT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)


class TenantPolicy(_Strict):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    currency: str
    timezone: str = "UTC"
    rounding: str = "half_even"
    # "partial": good lines are applied and bad ones listed; "whole": one bad line refuses
    # the whole report.
    report_errors: Literal["partial", "whole"] = "partial"
    payouts: Payouts
    referrals: tuple[ReferralTerms, ...] = ()
    points: Points = Points()
    networks: dict[Literal["cj", "impact", "awin", "rakuten"], Network] = {}
    # Point sites: members exchange points on demand through these exits.
    exits: dict[str, Exit] = {}
    campaigns: tuple[Campaign, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _payout_dates_optional_with_exits(cls, data):
        # A point site pays through exchanges: its payouts section may be left out.
        if isinstance(data, dict) and data.get("exits") and "payouts" not in data:
            data = {**data, "payouts": {"dates": [], "minimum": "0"}}
        return data

    @model_validator(mode="after")
    def _exchanges_coherent(self) -> "TenantPolicy":
        check_exchanges(self.points.points_per_unit, self.exits, self.campaigns)
        return self

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, code: str) -> str:
        if code not in CURRENCY_MINOR_DIGITS:
            raise ValueError(f"{code[:8]!r} is not an ISO 4217 currency")
        return code

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {name!r}") from None
        return name

    @field_validator("rounding")
    @classmethod
    def _known_rounding(cls, mode: str) -> str:
        if mode not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}")
        return mode

    @model_validator(mode="after")
    def _member_fields_exist(self) -> "TenantPolicy":
        for name, network in self.networks.items():
            known = MEMBER_FIELDS[name]
            if network.member_field is not None and network.member_field not in known:
                raise ValueError(f"networks.{name}.member_field must be one of "
                                 f"{', '.join(known)}")
        return self

    def network(self, name: str) -> Network:
        return self.networks.get(name) or Network()

    def network_accounts(self, name: str) -> tuple[str, ...]:
        """The declared accounts of a network, or its one implicit account (its name)."""
        return self.network(name).accounts or (name,)

    def member_field(self, name: str) -> str:
        return self.network(name).member_field or MEMBER_FIELDS[name][0]

    @model_validator(mode="after")
    def _amounts_fit_currency(self) -> "TenantPolicy":
        digits = CURRENCY_MINOR_DIGITS[self.currency]
        amounts = [("payouts.minimum", self.payouts.minimum)]
        for i, terms in enumerate(self.referrals):
            amounts.append((f"referrals[{i}].minimum_purchase", terms.minimum_purchase))
            for side in ("referrer_bonus", "friend_bonus"):
                bonus = getattr(terms, side)
                if bonus.amount is not None:
                    amounts.append((f"referrals[{i}].{side}.amount", bonus.amount))
        for where, text in amounts:
            try:
                parse_amount(text, digits)
            except AmountError as exc:
                raise ValueError(f"{where}: {exc.message}") from None
        return self

    @property
    def minor_digits(self) -> int:
        return CURRENCY_MINOR_DIGITS[self.currency]

    @property
    def minimum_payout_minor(self) -> int:
        return parse_amount(self.payouts.minimum, self.minor_digits)


def load_policy(path: str | Path) -> TenantPolicy:
    """Read a policy file; TOML by its suffix, JSON otherwise."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix.lower() == ".toml":
        data = tomllib.loads(raw.decode("utf-8"))
    else:
        data = json.loads(raw)
    return TenantPolicy.model_validate(data)
