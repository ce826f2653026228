"""The Japanese business-day calendar: crediting dates of exits that take N business days.

Banks in Japan close on Saturdays, Sundays, the public holidays (from the maintained
`holidays` library, which follows the Cabinet Office's list and its substitute holidays)
and the bank holidays of December 31 to January 3.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays

from settlement.exchanges.policy import Crediting


@lru_cache(maxsize=64)
def _public_holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("JP", years=year).keys())


def is_business_day(day: dt.date) -> bool:
    if day.weekday() >= 5 or day in _public_holidays(day.year):
        return False
    return not ((day.month == 12 and day.day == 31) or (day.month == 1 and day.day <= 3))


def add_business_days(start: dt.date, days: int) -> dt.date:
    """The `days`-th business day after `start` (start itself never counts)."""
    day = start
    while days > 0:
        day += dt.timedelta(days=1)
        if is_business_day(day):
            days -= 1
    return day


def crediting_date(crediting: Crediting, requested_on: dt.date) -> dt.date:
    if crediting.kind == "instant":
        return requested_on
    return add_business_days(requested_on, crediting.days)
