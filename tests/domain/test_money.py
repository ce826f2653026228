"""Money parsing and rounding: strict strings, integer minor units, one rounding, and the
SQL used at ingest agreeing with Python's Decimal."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import text

from settlement.commissions.rules import rate_sql
from settlement.money import AmountError, apply_rate, format_amount, parse_amount


@pytest.mark.parametrize("raw,digits,minor", [
    ("10.00", 2, 1000), ("10", 2, 1000), ("0.5", 2, 50), ("-3.25", 2, -325), ("1000", 0, 1000),
    ("10.500", 2, 1050), ("999999999999.99", 2, 99999999999999)])
def test_strict_decimal_strings_parse_to_minor_units(raw, digits, minor):
    assert parse_amount(raw, digits) == minor


@pytest.mark.parametrize("raw,digits,code", [
    ("1e3", 2, "invalid_amount"), ("NaN", 2, "invalid_amount"), ("Infinity", 2, "invalid_amount"),
    ("-0", 2, "negative_zero"), ("1,234.56", 2, "invalid_amount"), ("١٢٣", 2, "invalid_amount"),
    ("10.001", 2, "too_many_decimals"), ("1.5", 0, "too_many_decimals"), ("", 2, "invalid_amount"),
    (" 1", 2, "invalid_amount"), ("+1", 2, "invalid_amount"), ("1234567890123", 2, "invalid_amount")])
def test_anything_but_a_strict_decimal_is_refused_with_a_code(raw, digits, code):
    with pytest.raises(AmountError) as info:
        parse_amount(raw, digits)
    assert info.value.code == code


@given(st.data(), st.sampled_from([0, 2]))
def test_format_then_parse_is_the_identity(data, digits):
    bound = 10 ** (12 + digits) - 1  # twelve digits of major units at most
    minor = data.draw(st.integers(-bound, bound))
    assert parse_amount(format_amount(minor, digits), digits) == minor


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(-10**14, 10**14), st.integers(0, 10_000_000)),
                min_size=1, max_size=20),
       st.sampled_from(["half_even", "half_up", "down"]))
def test_sql_rate_rounding_matches_python_decimal_without_overflow(engine, values, mode):
    expected = [apply_rate(amount, ppm, mode) for amount, ppm in values]
    with engine.connect() as conn:
        got = [conn.execute(text(f"SELECT {rate_sql('CAST(:a AS BIGINT)', 'CAST(:p AS BIGINT)', mode)}"),
                            {"a": amount, "p": ppm}).scalar_one() for amount, ppm in values]
    assert got == expected


def test_half_even_rounds_ties_to_the_even_cent():
    assert apply_rate(250, 10_000, "half_even") == 2  # 2.5 cents -> 2
    assert apply_rate(350, 10_000, "half_even") == 4  # 3.5 cents -> 4
    assert apply_rate(250, 10_000, "half_up") == 3
