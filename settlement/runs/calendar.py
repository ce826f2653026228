"""Payout dates and cut-offs, from the tenant policy."""
from __future__ import annotations

import datetime as dt

from settlement.tenants.policy import TenantPolicy


def is_payout_date(policy: TenantPolicy, day: dt.date) -> bool:
    return f"{day.month:02d}-{day.day:02d}" in policy.payouts.dates


def cutoff_for(policy: TenantPolicy, payout_date: dt.date) -> dt.date:
    """The last confirmation date a payout date includes.

    confirmed_before_date: everything confirmed before the payout date.
    quarter_lag: the calendar quarter that ended `lag_days` or more before the payout date
    (Oct-Dec is paid on Feb 15 with 45 days).
    """
    rule = policy.payouts.cutoff
    if rule.rule == "confirmed_before_date":
        return payout_date - dt.timedelta(days=1)
    latest = payout_date - dt.timedelta(days=rule.lag_days)
    quarter_start_month = 3 * ((latest.month - 1) // 3) + 1
    quarter_start = dt.date(latest.year, quarter_start_month, 1)
    if latest == _quarter_end(quarter_start):
        return latest
    return quarter_start - dt.timedelta(days=1)


def _quarter_end(quarter_start: dt.date) -> dt.date:
    month = quarter_start.month + 3
    year = quarter_start.year + (month > 12)
    return dt.date(year, (month - 1) % 12 + 1, 1) - dt.timedelta(days=1)
