"""The sandbox's settings and what it records: batches, their items, and item events."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path

from sandboxes.paypal.spec import SPEC_PATH


@dataclass
class SandboxConfig:
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    token_ttl_seconds: int = 32_400
    polls_per_step: int = 1
    timeout_after_accept_seconds: float = 5.0
    webhook_url: str | None = None
    webhook_timeout_seconds: float = 2.0
    webhook_id: str = "WH-SANDBOX"  # signed into each event, as PayPal does (settings too)
    spec_path: str | Path = SPEC_PATH

    RUNTIME_KEYS = ("polls_per_step", "timeout_after_accept_seconds", "webhook_url",
                    "webhook_timeout_seconds", "token_ttl_seconds")

    def public(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in
                ("client_id", *self.RUNTIME_KEYS)}


@dataclass
class Item:
    payout_item_id: str
    batch: "Batch"
    index: int
    request: dict
    recipient_type: str
    outcome: str
    status: str = "PENDING"
    transaction_id: str | None = None
    time_processed: dt.datetime | None = None
    errors: dict | None = None

    @property
    def currency(self) -> str:
        return self.request["amount"]["currency"]


@dataclass
class ItemEvent:
    """An item's webhook event, rendered only when it is sent or read: a batch makes 15,000
    of them, which with no webhook configured nobody may ever read. It keeps what the item
    was at that moment (a later event, RETURNED after UNCLAIMED, changes the item)."""
    event_type: str
    summary: str
    then: Item  # a copy of the item as it was
    base: str
    now: dt.datetime


@dataclass
class Batch:
    payout_batch_id: str
    sender_batch_id: str | None
    request: dict
    time_created: dt.datetime
    request_id: str | None = None
    items: list[Item] = field(default_factory=list)
    polls: int = 0
    step: int = 0  # 0 PENDING, 1 PROCESSING, 2 done
    denied: bool = False
    time_completed: dt.datetime | None = None
    # The items' total, summed once: a batch's items never change, and every page of
    # every poll shows it.
    totals: tuple[str, Decimal] | None = None

    @property
    def status(self) -> str:
        if self.denied:
            return "DENIED"
        return ("PENDING", "PROCESSING", "SUCCESS")[self.step]
