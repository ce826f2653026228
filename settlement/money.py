"""Money: integer minor units, strict decimal-string parsing, one rounding per computation.

No float ever touches an amount. Rates are integer parts per million (ppm) so that SQL and
Python compute the same integers.
"""
from __future__ import annotations

import re
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from babel.numbers import get_currency_precision, list_currencies

# ISO 4217 codes that are not money a portal pays in: precious metals, IMF and settlement
# units, the testing and "no currency" codes.
_NOT_MONEY = frozenset({"XAG", "XAU", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU",
                        "XUA", "XTS", "XXX", "XRE", "XFO", "XFU", "XEU"})
# Every ISO 4217 currency (CLDR's list, as babel keeps it up to date) with its minor
# digits (CLDR's accounting digits: JPY 0, BRL 2, KWD 3, CLF 4).
CURRENCY_MINOR_DIGITS: dict[str, int] = {
    code: get_currency_precision(code) for code in list_currencies() if code not in _NOT_MONEY
}

# ASCII digits only: `\d` would also match other scripts' digits (for example ١٢٣).
_AMOUNT = re.compile(r"(-?)([0-9]{1,12})(?:\.([0-9]+))?\Z", re.ASCII)

PPM = 1_000_000
# Networks state sale and commission with up to 4 decimals in every currency (CJ 3, Rakuten
# Advertising and Impact 4). Those amounts are kept in ten-thousandths of the major unit
# ("network units"); only a computed share or a ledger amount is rounded to minor units.
NETWORK_DIGITS = 4
ROUNDING_MODES = ("half_even", "half_up", "down")
_DECIMAL_ROUNDING = {"half_even": ROUND_HALF_EVEN, "half_up": ROUND_HALF_UP, "down": ROUND_DOWN}


class AmountError(ValueError):
    """An amount string that is not a strict decimal in the currency's minor digits."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def minor_digits(currency: str) -> int:
    try:
        return CURRENCY_MINOR_DIGITS[currency]
    except KeyError:
        raise AmountError("unknown_currency",
                          f"{currency[:8]!r} is not an ISO 4217 currency") from None


def parse_amount(text: str, digits: int) -> int:
    """Parse a major-unit decimal string ("10.50") into minor units (1050).

    Strict: `^-?\\d{1,12}(\\.\\d+)?$` in ASCII, at most `digits` decimals (trailing zeros
    beyond them are accepted: "10.500" is 1050 cents), no exponent, NaN, infinity,
    separators or "-0".
    """
    m = _AMOUNT.match(text)
    if m is None:
        raise AmountError("invalid_amount", f"{text[:40]!r} is not a decimal amount like 12.34")
    sign, whole, frac = m.groups()
    if frac is None:
        frac = ""
    elif len(frac) > digits:
        extra = frac[digits:]
        if extra.strip("0"):
            raise AmountError(
                "too_many_decimals", f"{text[:40]!r} has more than {digits} decimal digits"
            )
        frac = frac[:digits]
    value = int(whole) * 10**digits + (int(frac.ljust(digits, "0")) if digits else 0)
    if sign:
        if value == 0:
            raise AmountError("negative_zero", f"{text!r}: negative zero is not an amount")
        value = -value
    return value


def parse_network_amount(text: str) -> int:
    """A network's amount ("7.781") in ten-thousandths of the major unit (77810)."""
    return parse_amount(text, NETWORK_DIGITS)


def network_scale(digits: int) -> int:
    """Network units per minor unit of a currency with `digits` minor digits."""
    if not 0 <= digits <= NETWORK_DIGITS:
        raise ValueError(f"a currency with {digits} minor digits is finer than network amounts")
    return 10 ** (NETWORK_DIGITS - digits)


def round_div(numerator: int, divisor: int, mode: str = "half_even") -> int:
    """numerator / divisor rounded once with the tenant's rounding mode, exactly."""
    q = Decimal(numerator) / Decimal(divisor)
    return int(q.quantize(Decimal(1), rounding=_DECIMAL_ROUNDING[mode]))


def network_to_minor(units: int, digits: int, mode: str = "half_even") -> int:
    """A network amount rounded once to the currency's minor units."""
    return round_div(units, network_scale(digits), mode)


def format_amount(minor: int, digits: int) -> str:
    """Minor units back to the API's major-unit decimal string."""
    if digits == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}"


def parse_rate_ppm(text: str) -> int:
    """A percentage such as "7.5" into parts per million of the base (75000)."""
    m = _AMOUNT.match(str(text))
    if m is None:
        raise AmountError("invalid_rate", f"{text!r} is not a percentage like 7.5")
    sign, whole, frac = m.groups()
    frac = frac or ""
    if len(frac) > 4 and frac[4:].strip("0"):
        raise AmountError("invalid_rate", f"{text!r} has more than 4 decimal digits")
    value = int(whole) * 10_000 + int(frac[:4].ljust(4, "0"))
    return -value if sign else value


def format_rate_ppm(ppm: int) -> str:
    text = format_amount(ppm, 4).rstrip("0").rstrip(".")
    return text or "0"


def apply_rate(amount: int, ppm: int, mode: str = "half_even", scale: int = 1) -> int:
    """round(amount * ppm / 1e6 / scale) with the tenant's rounding mode, in exact integers;
    `scale` (network_scale) gives a share in minor units of a network amount."""
    return round_div(amount * ppm, PPM * scale, mode)
