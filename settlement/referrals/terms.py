"""The tenant's referral terms as SQL: which terms apply to a join date, and what each side's
bonus is worth in the tenant currency. Everything here turns the validated policy into
literal SQL fragments (integers and ISO dates only), so that the lifecycle statements stay
set-based on both databases.

Which terms apply: the terms in force on the friend's join date (`valid_from` inclusive,
`valid_to` exclusive). A dated offer (a promotion) wins over an undated one (the standing
offer); between two dated offers the one that started later wins; a tie goes to the one
listed later in the policy file.

What a bonus is worth: an `amount` is itself. A `points` bonus is owed in points and
posted as their cash value at the points method's rate, rounded UP to the minor unit, so
that paying the balance through that method buys at least the points promised:
- `amex_mr`: points_per_major_unit of the policy;
- `bilt`: the rate in force on the day the bonus is granted for the member's Bilt tier; a
  member without a tier (not a Bilt member) gets the undated-tier rate if there is one,
  else the highest rate in force (the least cash per point). No rate in force at all: the
  bonus cannot be valued and that side is refused (`no_points_rate`).
"""
from __future__ import annotations

import datetime as dt

from settlement.money import parse_amount
from settlement.tenants.policy import Bonus, TenantPolicy

BILT_TIERS = ("blue", "silver", "gold", "platinum")


def precedence(policy: TenantPolicy) -> list[int]:
    """Indexes of policy.referrals, the winning one first."""
    terms = policy.referrals
    return sorted(range(len(terms)), reverse=True,
                  key=lambda i: (terms[i].valid_from is not None,
                                 terms[i].valid_from or dt.date.min, i))


def terms_index_sql(policy: TenantPolicy, day_sql: str) -> str:
    """SQL: the index of the terms in force on the date `day_sql` (NULL: none)."""
    cases = []
    for i in precedence(policy):
        t = policy.referrals[i]
        conditions = [f"{day_sql} IS NOT NULL"]
        if t.valid_from is not None:
            conditions.append(f"{day_sql} >= '{t.valid_from.isoformat()}'")
        if t.valid_to is not None:
            conditions.append(f"{day_sql} < '{t.valid_to.isoformat()}'")
        cases.append(f"WHEN {' AND '.join(conditions)} THEN {i}")
    if not cases:
        return INT_NULL
    return f"(CASE {' '.join(cases)} END)"


INT_NULL = "CAST(NULL AS BIGINT)"
TEXT_NULL = "CAST(NULL AS VARCHAR(16))"


def by_terms(index_sql: str, values: list, null: str = INT_NULL) -> str:
    """SQL: values[index] (ints, or method names with null=TEXT_NULL; None is NULL). Typed
    NULLs: PostgreSQL would make an untyped NULL column of a temp table text."""
    def literal(v) -> str:
        if v is None:
            return null
        if isinstance(v, int):
            return str(int(v))
        text = str(v)
        assert text.replace("_", "").isalnum(), text  # method names only
        return f"'{text}'"
    if not values or all(v is None for v in values):
        return null
    whens = " ".join(f"WHEN {i} THEN {literal(v)}" for i, v in enumerate(values))
    return f"(CASE {index_sql} {whens} END)"


def minimum_sql(policy: TenantPolicy, index_sql: str) -> str:
    return by_terms(index_sql, [parse_amount(t.minimum_purchase, policy.minor_digits)
                                for t in policy.referrals])


def window_days_sql(policy: TenantPolicy, index_sql: str) -> str:
    return by_terms(index_sql, [t.window_days for t in policy.referrals])


def cap_sql(policy: TenantPolicy, index_sql: str) -> str:
    return by_terms(index_sql, [t.cap_per_referrer_per_year for t in policy.referrals])


def keep_after_reversal_sql(policy: TenantPolicy, index_sql: str) -> str:
    """1 where the terms keep earned bonuses when the purchase is reversed, else 0."""
    return by_terms(index_sql, [int(t.keep_bonus_after_reversal) for t in policy.referrals])


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def bilt_rates(policy: TenantPolicy, day: dt.date) -> tuple[dict[str, int], int | None]:
    """Points per major unit of Bilt on `day`: by tier, and for a member without a tier."""
    live = [r for r in policy.payouts.methods.bilt.rates
            if (r.valid_from is None or r.valid_from <= day)
            and (r.valid_to is None or day < r.valid_to)]
    by_tier = {}
    for tier in BILT_TIERS:
        for rate in live:  # the first matching rate wins, as when planning a run
            if not rate.tiers or tier in rate.tiers:
                by_tier[tier] = rate.points_per_major_unit
                break
    untiered = [r.points_per_major_unit for r in live if not r.tiers]
    default = untiered[0] if untiered else max((r.points_per_major_unit for r in live),
                                               default=None)
    return by_tier, default


def cash_value_sql(policy: TenantPolicy, bonus: Bonus, day: dt.date, tier: str) -> str:
    """SQL: the cash value (minor units) of one bonus for a member whose Bilt tier is the
    SQL expression `tier`; NULL when points cannot be valued."""
    digits = policy.minor_digits
    if bonus.amount is not None:
        return str(parse_amount(bonus.amount, digits))
    scale = 10 ** digits
    if bonus.points_method == "amex_mr":
        rate = policy.payouts.methods.amex_mr.points_per_major_unit
        return str(_ceil_div(bonus.points * scale, rate))
    by_tier, default = bilt_rates(policy, day)
    whens = " ".join(f"WHEN '{tier}' THEN {_ceil_div(bonus.points * scale, rate)}"
                     for tier, rate in by_tier.items())
    fallback = INT_NULL if default is None else str(_ceil_div(bonus.points * scale, default))
    if not whens:
        return fallback
    return f"(CASE lower({tier}) {whens} ELSE {fallback} END)"


def side_sql(policy: TenantPolicy, index_sql: str, side: str, day: dt.date,
             tier: str) -> tuple[str, str, str]:
    """SQL of (cash value, points, points method) of one side's bonus under the terms, for a
    member whose Bilt tier is the SQL expression `tier`."""
    bonuses = [getattr(t, f"{side}_bonus") for t in policy.referrals]
    if not bonuses:
        return INT_NULL, INT_NULL, TEXT_NULL
    whens = " ".join(f"WHEN {i} THEN {cash_value_sql(policy, b, day, tier)}"
                     for i, b in enumerate(bonuses))
    cash = f"(CASE {index_sql} {whens} END)"
    return (cash, by_terms(index_sql, [b.points for b in bonuses]),
            by_terms(index_sql, [b.points_method for b in bonuses], TEXT_NULL))
