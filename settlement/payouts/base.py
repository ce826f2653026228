"""The one small interface every payout method implements.

A run's items are submitted in batches (a PayPal batch of at most 15,000 items, a check
print file, a partner transfer file). An adapter turns a batch into the provider's
protocol and reports what it knows about each item. It never decides about money: the run
(settlement/runs/) moves balances from the outcomes it reports.

Idempotency: `BatchContext.idempotency_key` is derived from tenant, run, method and batch
number, so submitting the same batch again is recognised by the provider (PayPal's
`sender_batch_id`) or overwrites the same file with the same content. When an adapter
cannot tell whether the provider accepted a batch it answers UNKNOWN, and `find` asks the
provider later; nothing is ever re-sent blindly.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# Item outcomes an adapter reports.
SUCCEEDED = "succeeded"  # the money (or points) reached the member; final
FAILED = "failed"  # it did not and will not: back to the member's balance; final
PENDING = "pending"  # the provider has it, no outcome yet: ask again later
UNCLAIMED = "unclaimed"  # PayPal: not claimed yet; returned after 30 days unless claimed

# Batch states after a submission.
SUBMITTED = "submitted"  # the provider has the batch: poll it
UNKNOWN = "unknown"  # we do not know whether the provider has it: `find` it, never resend
REFUSED = "refused"  # the provider refused the whole batch; nothing was paid


@dataclass(frozen=True)
class Address:
    name: str | None
    line1: str | None
    line2: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None


@dataclass(frozen=True)
class PayoutLine:
    item_id: int  # our run item id
    reference: str  # our reference for the item, unique and stable (sender_item_id, ...)
    member: str  # the member's external id
    amount: int  # minor units of `currency`
    currency: str
    digits: int  # minor digits of the currency
    points: int | None  # points methods: what the partner credits
    destination: str | None  # PayPal email, Amex MR account, Bilt account
    address: Address | None  # checks are mailed here


@dataclass(frozen=True)
class BatchContext:
    tenant: str  # tenant slug
    run_id: int
    payout_date: dt.date
    method: str
    seq: int  # batch number within the run and method
    idempotency_key: str  # sender_batch_id / file stem, derived, never random
    outbox: Path  # where file-based methods write (per tenant and run)


@dataclass(frozen=True)
class ItemOutcome:
    item_id: int
    status: str  # SUCCEEDED | FAILED | PENDING | UNCLAIMED
    provider_item_id: str | None = None
    provider_status: str | None = None  # the provider's own word (SUCCESS, RETURNED, ...)
    reason: str | None = None  # for FAILED: why, for the member's statement


@dataclass
class BatchResult:
    state: str  # SUBMITTED | UNKNOWN | REFUSED
    provider_batch_id: str | None = None
    outcomes: list[ItemOutcome] = field(default_factory=list)  # what is known already
    error: str | None = None
    done: bool = False  # no item will change any more (polling can stop)


class PayoutAdapter(Protocol):
    method: str

    def submit(self, ctx: BatchContext, lines: list[PayoutLine]) -> BatchResult:
        """Hand the batch to the provider, once; safe to call again with the same ctx."""

    def poll(self, ctx: BatchContext, provider_batch_id: str,
             lines: list[PayoutLine]) -> BatchResult:
        """What the provider now says of the batch's items."""

    def find(self, ctx: BatchContext, lines: list[PayoutLine]) -> BatchResult:
        """For a batch in state UNKNOWN: ask the provider whether it has it (by the
        idempotency key) and return SUBMITTED with its id, or REFUSED if it never got it
        (then the run may submit it again)."""
