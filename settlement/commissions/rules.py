"""Share rules: how much of a commission the member gets.

A rule pays a percent of the sale (the advertised cash back), a percent of the commission,
or a fixed amount; it is scoped by retailer and/or category, valid from/to (to is
exclusive), and higher priority wins (promotions). Among equal priorities the more specific
scope wins. A `category_only` rule is a category-limited offer: at its retailer, lines
outside its category earn nothing. Two rules that could tie are refused when created.

The share itself is computed in SQL (see `share_sql`), set-based at ingest, in exact
integers: round(amount * ppm / 1e6) once, with the tenant's rounding mode.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from settlement.models import Retailer, ShareRule
from settlement.numbering import take_number
from settlement.money import PPM, AmountError, parse_amount, parse_rate_ppm

KINDS = ("percent_of_sale", "percent_of_commission", "fixed")
MAX_RATE_PPM = 10 * PPM  # 1000%: a portal may subsidise, but not without bound


class RuleError(ValueError):
    def __init__(self, field: str, code: str, message: str):
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


@dataclass(frozen=True)
class RuleInput:
    retailer: str | None
    category: str | None
    kind: str
    rate: str | None
    amount: str | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    priority: int
    category_only: bool
    description: str | None = None


def create_rule(session: Session, tenant_id: int, digits: int, rule: RuleInput) -> ShareRule:
    retailer_id = None
    if rule.retailer is not None:
        retailer_id = session.scalar(select(Retailer.id).where(
            Retailer.tenant_id == tenant_id, Retailer.slug == rule.retailer))
        if retailer_id is None:
            raise RuleError("retailer", "unknown_retailer", f"no retailer {rule.retailer!r}")
    if rule.kind not in KINDS:
        raise RuleError("kind", "invalid_kind", f"kind must be one of {', '.join(KINDS)}")
    rate_ppm = amount = None
    try:
        if rule.kind == "fixed":
            if rule.amount is None or rule.rate is not None:
                raise RuleError("amount", "missing_field", "a fixed rule has an amount, no rate")
            amount = parse_amount(rule.amount, digits)
            if amount < 0:
                raise RuleError("amount", "negative", "a fixed amount cannot be negative")
        else:
            if rule.rate is None or rule.amount is not None:
                raise RuleError("rate", "missing_field", "a percent rule has a rate, no amount")
            rate_ppm = parse_rate_ppm(rule.rate)
            if not 0 <= rate_ppm <= MAX_RATE_PPM:
                raise RuleError("rate", "out_of_range", "a rate is between 0 and 1000 percent")
    except AmountError as exc:
        raise RuleError("amount" if rule.kind == "fixed" else "rate", exc.code, exc.message)
    if rule.valid_from and rule.valid_to and rule.valid_to <= rule.valid_from:
        raise RuleError("valid_to", "invalid_range", "valid_to must be after valid_from")
    if rule.category_only and (rule.category is None or retailer_id is None):
        raise RuleError("category_only", "invalid_scope",
                        "a category-limited offer names both its retailer and its category")
    category = rule.category.lower() if rule.category else None
    clash = _clashing_rule(session, tenant_id, retailer_id, category, rule)
    if clash is not None:
        raise RuleError("priority", "ambiguous_rule",
                        f"rule {clash} has the same scope and priority over overlapping dates; "
                        "give one of them a different priority or dates")
    row = ShareRule(tenant_id=tenant_id, number=take_number(session, tenant_id, "share_rule"),
                    retailer_id=retailer_id, category=category,
                    kind=rule.kind, rate_ppm=rate_ppm, amount=amount, valid_from=rule.valid_from,
                    valid_to=rule.valid_to, priority=rule.priority,
                    category_only=rule.category_only, description=rule.description)
    session.add(row)
    session.flush()
    return row


def _clashing_rule(session, tenant_id, retailer_id, category, rule: RuleInput) -> int | None:
    """The number of a rule that would tie with this one for some line: same scope, same
    priority, and validity periods that overlap."""
    same_scope = [ShareRule.tenant_id == tenant_id, ShareRule.priority == rule.priority,
                  ShareRule.retailer_id.is_(None) if retailer_id is None
                  else ShareRule.retailer_id == retailer_id,
                  ShareRule.category.is_(None) if category is None
                  else ShareRule.category == category]
    overlaps = []
    if rule.valid_to is not None:
        overlaps.append(or_(ShareRule.valid_from.is_(None), ShareRule.valid_from < rule.valid_to))
    if rule.valid_from is not None:
        overlaps.append(or_(ShareRule.valid_to.is_(None), ShareRule.valid_to > rule.valid_from))
    return session.scalar(select(ShareRule.number).where(and_(*same_scope, *overlaps))
                          .limit(1))


def round_div_sql(n: str, d: int, mode: str) -> str:
    """SQL for n / d rounded once with `mode`, in integers on both databases.
    Integer division truncates toward zero in PostgreSQL and SQLite alike."""
    t = f"(({n}) / {d})"
    r = f"(({n}) - ({n}) / {d} * {d})"
    away = f"({t} + CASE WHEN ({n}) < 0 THEN -1 ELSE 1 END)"
    if mode == "down":
        return t
    if mode == "half_up":
        return f"(CASE WHEN 2 * abs({r}) >= {d} THEN {away} ELSE {t} END)"
    if mode == "half_even":
        return (f"(CASE WHEN 2 * abs({r}) > {d} OR (2 * abs({r}) = {d} AND {t} % 2 <> 0) "
                f"THEN {away} ELSE {t} END)")
    raise ValueError(f"unknown rounding mode {mode}")


def rate_sql(amount: str, ppm: str, mode: str, scale: int = 1) -> str:
    """round(amount * ppm / 1e6 / scale) without overflowing 64 bits: the whole multiples of
    the divisor in the amount are multiplied exactly, only the rest is rounded (same sign, so
    rounding the rest rounds the whole). `scale` turns network units into minor units, so
    that a share is rounded once, from the network's precise amount."""
    divisor = PPM * scale
    whole = f"(({amount}) / {divisor})"
    rest = f"(({amount}) - ({amount}) / {divisor} * {divisor})"
    return f"({whole} * ({ppm}) + {round_div_sql(f'{rest} * ({ppm})', divisor, mode)})"


def share_sql(rule: str, sale: str, commission: str, category: str, mode: str,
              scale: int = 1) -> str:
    """The member's share of one line under rule alias `rule` (NULL rule: nothing), in minor
    units; `sale` and `commission` are network units, `scale` of them to a minor unit."""
    return f"""(CASE
      WHEN {rule}.id IS NULL THEN 0
      WHEN {rule}.category_only AND ({category} IS NULL OR {category} <> {rule}.category) THEN 0
      WHEN {rule}.kind = 'fixed' THEN CASE WHEN {commission} < 0 THEN -{rule}.amount
                                         WHEN {commission} = 0 THEN 0 ELSE {rule}.amount END
      WHEN {rule}.kind = 'percent_of_sale' THEN {rate_sql(sale, f'{rule}.rate_ppm', mode, scale)}
      ELSE {rate_sql(commission, f'{rule}.rate_ppm', mode, scale)}
    END)"""


def best_rule_sql() -> str:
    """The rule in force for each distinct (retailer, category, date) of the incoming lines:
    highest priority, then retailer-specific, then the exact category, then the broader
    retailer-wide rule before a category-limited offer for another category."""
    return """
    SELECT retailer_id, category, event_date, rule_id FROM (
      SELECT k.retailer_id, k.category, k.event_date, r.id AS rule_id,
        row_number() OVER (
          PARTITION BY k.retailer_id, k.category, k.event_date
          ORDER BY r.priority DESC,
                   CASE WHEN r.retailer_id IS NULL THEN 0 ELSE 1 END DESC,
                   CASE WHEN r.category = k.category THEN 1 ELSE 0 END DESC,
                   CASE WHEN r.category IS NULL THEN 1 ELSE 0 END DESC,
                   r.id DESC) AS rank
      FROM line_keys k
      JOIN share_rules r ON r.tenant_id = :t
       AND (r.retailer_id IS NULL OR r.retailer_id = k.retailer_id)
       AND (r.category IS NULL OR r.category = k.category
            OR (r.category_only AND r.retailer_id = k.retailer_id))
       AND (r.valid_from IS NULL OR r.valid_from <= k.event_date)
       AND (r.valid_to IS NULL OR r.valid_to > k.event_date)
    ) ranked WHERE rank = 1
    """
