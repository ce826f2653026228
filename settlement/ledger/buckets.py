"""Which bucket of a member's balance a commission's share sits in, by the line's status.

The one definition of the mapping; the set-based paths (a report's entry, attaching lines
to members, releasing corrections) render it as SQL with `bucket_sql`.
"""
from __future__ import annotations

from settlement.states import CommissionStatus

MEMBER_BUCKETS = ("pending", "available", "reserved", "paid")
STATUS_BUCKET = {CommissionStatus.PENDING: "pending",
                 CommissionStatus.CONFIRMED: "available"}  # reversed: no bucket
UNATTRIBUTED = "unattributed_"  # the tenant's account of a bucket whose member is unknown


def bucket_sql(status: str) -> str:
    """SQL: the bucket of the line whose status is the expression `status` (NULL for a
    reversed line: callers select only lines that have a bucket)."""
    whens = " ".join(f"WHEN '{s}' THEN '{bucket}'" for s, bucket in STATUS_BUCKET.items())
    return f"CASE {status} {whens} END"


def unattributed_sql(status: str) -> str:
    """SQL: the tenant's account holding that bucket for lines of no known member."""
    return f"'{UNATTRIBUTED}' || {bucket_sql(status)}"


def account_sql(status: str, member_id: str) -> str:
    """SQL: the account of the line's share: the member's bucket, or the unattributed one."""
    return (f"CASE WHEN {member_id} IS NULL THEN {unattributed_sql(status)} "
            f"ELSE {bucket_sql(status)} END")
