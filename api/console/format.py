"""How the console shows money and time: amounts in the tenant's currency from integer
minor units (no float anywhere), moments in the tenant's time zone."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SYMBOLS = {"USD": "$", "JPY": "¥", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$"}


def money(minor: int | None, currency: str, digits: int) -> str:
    """1234567 USD (2 digits) -> "$12,345.67"; -500 JPY -> "-¥500"; unknown symbol: code."""
    if minor is None:
        return ""
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(int(minor)), 10 ** digits)
    text = f"{whole:,}" + (f".{fraction:0{digits}d}" if digits else "")
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def moment(value: dt.datetime | None, zone: str) -> str:
    """A stored moment (UTC; SQLite's come back naive) in the tenant's zone."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    local = value.astimezone(ZoneInfo(zone))
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "")


def start_of_today(zone: str) -> dt.datetime:
    """Midnight today in the tenant's zone, as an aware moment (for "today's uploads")."""
    now = dt.datetime.now(ZoneInfo(zone))
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
