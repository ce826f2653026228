"""The names of every stored state: one StrEnum per status column.

A member is its stored value: it compares equal to the string, is written as the string,
and formats as the string in f-strings, so SQL built from it reads exactly as the literal
it replaces (`f"status = '{CommissionStatus.PENDING}'"` is `status = 'pending'`). Hot SQL
keeps literals, not bind parameters: a partial index whose predicate names a state is only
used by a query that names the same literal. The columns are plain strings (no CHECK
constraint): these enums are the one list of what the code writes.
"""
from __future__ import annotations

from enum import StrEnum


class CommissionStatus(StrEnum):
    """`commissions.status`, also a network line's status once read."""
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REVERSED = "reversed"


class ReportStatus(StrEnum):
    """`reports.status`."""
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class RunStatus(StrEnum):
    """`settlement_runs.status`."""
    PLANNED = "planned"
    APPROVED = "approved"
    EXECUTING = "executing"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    CANCELLED = "cancelled"


class BatchStatus(StrEnum):
    """`run_batches.status` (the state machine in settlement/runs/execute.py)."""
    PENDING = "pending"
    SUBMITTING = "submitting"
    UNKNOWN = "unknown"
    SUBMITTED = "submitted"
    FOLLOWING = "following"
    COMPLETED = "completed"


class ItemStatus(StrEnum):
    """`run_items.status`."""
    PLANNED = "planned"
    SUBMITTED = "submitted"
    UNCLAIMED = "unclaimed"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETURNED = "returned"


class ReferralStatus(StrEnum):
    """`referrals.status`."""
    OPEN = "open"
    PENDING = "pending"
    EARNED = "earned"
    EXPIRED = "expired"
    HELD = "held"
    REFUSED = "refused"


class BonusStatus(StrEnum):
    """`referral_bonuses.status`."""
    PENDING = "pending"
    EARNED = "earned"
    VOIDED = "voided"
    REFUSED = "refused"
    CLAWED_BACK = "clawed_back"


class ExchangeStatus(StrEnum):
    """`exchanges.status`."""
    REQUESTED = "requested"
    PROCESSING = "processing"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ExchangeBatchStatus(StrEnum):
    """`exchange_batches.status`."""
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    COMPLETED = "completed"


def sql_in(*states: StrEnum) -> str:
    """SQL: the parenthesised list of the states' literals, `('pending', 'earned')`."""
    return "(" + ", ".join(f"'{state}'" for state in states) + ")"
