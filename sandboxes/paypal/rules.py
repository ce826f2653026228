"""What PayPal allows (currencies, receivers, windows, limits) and what the sandbox scripts
(item outcomes by receiver, the faults it can inject, the webhook events it sends)."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

INFORMATION_LINK = "https://developer.paypal.com/docs/api/payments.payouts-batch/#errors"
MAX_ITEMS = 15_000
DUPLICATE_WINDOW = dt.timedelta(days=30)
REQUEST_ID_WINDOW = dt.timedelta(days=30)
UNCLAIMED_RETURNED_AFTER = dt.timedelta(days=30)
MAX_DETAILS = 100

# Currencies PayPal pays out in, with their minor digits (PayPal's currency-codes page:
# HUF, JPY and TWD take no decimals).
PAYPAL_CURRENCIES: dict[str, int] = {
    code: 2 for code in (
        "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "ILS", "MYR", "MXN", "NZD",
        "NOK", "PHP", "PLN", "GBP", "RUB", "SGD", "SEK", "CHF", "THB", "USD")
}
PAYPAL_CURRENCIES.update({"HUF": 0, "JPY": 0, "TWD": 0})

AMOUNT_VALUE = re.compile(r"[0-9]+(?:\.([0-9]+))?", re.ASCII)
EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
                    re.ASCII)
PHONE = re.compile(r"\+?[0-9][0-9 ()-]{5,20}", re.ASCII)
PAYPAL_ID = re.compile(r"[A-Z0-9]{13}", re.ASCII)

# Receiver suffix -> scripted final transaction_status.
OUTCOME_SUFFIXES: dict[str, str] = {
    "+fail": "FAILED",
    "+unclaimed": "UNCLAIMED",
    "+returned": "RETURNED",
    "+onhold": "ONHOLD",
    "+blocked": "BLOCKED",
    "+pending": "PENDING",
}

# Item errors the sandbox reports per outcome: (name, message).
OUTCOME_ERRORS: dict[str, tuple[str, str]] = {
    "FAILED": ("RECEIVER_UNREGISTERED", "Receiver is unregistered."),
    "UNCLAIMED": ("RECEIVER_UNREGISTERED", "Receiver is unregistered."),
    "RETURNED": ("RECEIVER_REFUSED", "Receiver refused the payment."),
    "BLOCKED": ("RISK_DECLINE", "The payment was blocked by risk review."),
}
DENIED_ERROR = ("INSUFFICIENT_FUNDS", "Sender does not have sufficient funds.")

ITEM_EVENTS: dict[str, tuple[str, str]] = {
    "SUCCESS": ("PAYMENT.PAYOUTS-ITEM.SUCCEEDED", "A payout item has succeeded."),
    "FAILED": ("PAYMENT.PAYOUTS-ITEM.FAILED", "A payout item has failed."),
    "UNCLAIMED": ("PAYMENT.PAYOUTS-ITEM.UNCLAIMED", "A payout item is unclaimed."),
    "RETURNED": ("PAYMENT.PAYOUTS-ITEM.RETURNED", "A payout item was returned."),
    "ONHOLD": ("PAYMENT.PAYOUTS-ITEM.HELD", "A payout item is on hold."),
    "BLOCKED": ("PAYMENT.PAYOUTS-ITEM.BLOCKED", "A payout item was blocked."),
    "REFUNDED": ("PAYMENT.PAYOUTS-ITEM.REFUNDED", "A payout item was refunded."),
    "REVERSED": ("PAYMENT.PAYOUTS-ITEM.REVERSED", "A payout item was reversed."),
}

BEFORE_ACCEPT_FAULTS = frozenset({"http_500", "http_503", "drop_connection", "delay"})
AFTER_ACCEPT_FAULTS = frozenset({"timeout_after_accept", "http_500_after_accept",
                                 "drop_connection_after_accept", "deny_batch"})
FAULT_OPERATIONS = frozenset({"create", "get", "token", "cancel", "any"})


def format_amount(total: Decimal, currency: str) -> str:
    digits = PAYPAL_CURRENCIES.get(currency, 2)
    return str(total.quantize(Decimal(1).scaleb(-digits)))


def scripted_outcome(receiver: str, recipient_type: str) -> str:
    """The final transaction_status the sandbox gives an item, chosen by its receiver."""
    local = receiver.rsplit("@", 1)[0] if recipient_type == "EMAIL" else receiver
    local = local.lower()
    for suffix, outcome in OUTCOME_SUFFIXES.items():
        if local.endswith(suffix):
            return outcome
    return "SUCCESS"
