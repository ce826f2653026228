"""PayPal Payouts as one slice: the adapter (adapter.py), the run items' reference
(reference.py), the webhook's batch look-up (lookup.py) and how long and how often
PayPal is asked (policy.py)."""
from settlement.payouts.paypal.adapter import (MAX_ITEMS, PayPalAdapter, original_batch_id,
                                               parse_webhook)

__all__ = ["MAX_ITEMS", "PayPalAdapter", "original_batch_id", "parse_webhook"]
