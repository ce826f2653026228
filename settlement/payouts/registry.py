"""The payout adapter for a method.

PayPal's adapter is imported only when asked for, so the file-based methods work without
its HTTP client being loaded (or, while it is being written, existing).
"""
from __future__ import annotations

from settlement.payouts.base import PayoutAdapter

METHODS = ("check", "paypal", "amex_mr", "bilt")


class UnknownMethodError(ValueError):
    def __init__(self, method: str):
        super().__init__(f"no payout adapter for method {method!r} "
                         f"(known: {', '.join(METHODS)})")
        self.method = method


def adapter_for(method: str, settings) -> PayoutAdapter:
    """A new adapter for `method`, configured from `settings` (settlement.config.Settings)."""
    if method == "check":
        from settlement.payouts.check import CheckAdapter
        return CheckAdapter.from_settings(settings)
    if method == "amex_mr":
        from settlement.payouts.points import AmexMRAdapter
        return AmexMRAdapter.from_settings(settings)
    if method == "bilt":
        from settlement.payouts.points import BiltAdapter
        return BiltAdapter.from_settings(settings)
    if method == "paypal":
        from settlement.payouts.paypal import PayPalAdapter
        return PayPalAdapter.from_settings(settings)
    raise UnknownMethodError(method)
