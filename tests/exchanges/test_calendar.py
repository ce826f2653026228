"""Crediting dates on the Japanese business-day calendar."""
from __future__ import annotations

import datetime as dt

from settlement.exchanges.calendar import add_business_days, crediting_date, is_business_day
from settlement.exchanges.policy import Crediting


def test_weekends_public_holidays_and_bank_holidays_are_not_business_days():
    assert not is_business_day(dt.date(2026, 11, 21))  # Saturday
    assert not is_business_day(dt.date(2026, 11, 23))  # Labor Thanksgiving Day (Monday)
    assert not is_business_day(dt.date(2026, 12, 31))  # bank holiday
    assert not is_business_day(dt.date(2027, 1, 2))
    assert is_business_day(dt.date(2026, 11, 24))


def test_a_holiday_pushes_a_three_business_day_crediting_date_by_a_day():
    # Thursday 19 Nov + 3 business days: Fri 20, (weekend, Mon 23 holiday) Tue 24, Wed 25.
    assert add_business_days(dt.date(2026, 11, 19), 3) == dt.date(2026, 11, 25)
    # The week after has no holiday: Thursday 26 + 3 is Tuesday 1 December.
    assert add_business_days(dt.date(2026, 11, 26), 3) == dt.date(2026, 12, 1)


def test_golden_week_substitute_holiday_is_skipped():
    # 2026-05-03 (Sun) Constitution Day gives a substitute holiday on Wednesday 6 May.
    assert add_business_days(dt.date(2026, 5, 1), 1) == dt.date(2026, 5, 7)


def test_instant_crediting_is_the_request_date_even_on_a_holiday():
    assert crediting_date(Crediting(), dt.date(2026, 11, 23)) == dt.date(2026, 11, 23)
    assert crediting_date(Crediting(kind="business_days", days=3),
                          dt.date(2026, 11, 23)) == dt.date(2026, 11, 26)
