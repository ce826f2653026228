"""Public numbers: what the API and the command line call a tenant's reports, runs, batches,
keys and share rules (and, per member, exchanges).

Internal ids come from one sequence per table shared by every tenant, so an id handed to
a tenant would tell it how many objects all tenants made in between. Each tenant's objects
are numbered 1, 2, 3... by a counter of its own instead (`tenant_counters`), and routes
translate a number to the internal id, within the caller's tenant, before anything else;
joins keep using the internal ids.

A number is taken with one upsert that returns the counter's new value: concurrent
takers of the same tenant and kind queue on the counter's row until the taker before them
commits, so no two rows get the same number (the unique (tenant_id, number) keys are the
backstop). A taker that rolls back leaves a gap, which says nothing either. Take the
number as late in the transaction as possible: the row stays locked until commit.
"""
from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

# kind -> the table it numbers; the kind is the counter's name.
KINDS = {
    "report": "reports",
    "run": "settlement_runs",
    "batch": "run_batches",
    "key": "api_keys",
    "share_rule": "share_rules",
}
# Exchanges are numbered per member instead (settlement/exchanges/service.py): their paths
# name the member, and the member's row is locked anyway, so ~100 requests a second of one
# tenant never queue on a counter of the tenant.

_TAKE = text("""
  INSERT INTO tenant_counters (tenant_id, kind, last) VALUES (:t, :k, :n)
  ON CONFLICT (tenant_id, kind) DO UPDATE SET last = tenant_counters.last + :n
  RETURNING last""")


def take_numbers(session: Session, tenant_id: int, kind: str, count: int = 1) -> int:
    """Reserve `count` consecutive numbers of the tenant's `kind`; returns the first.
    The counter's row stays locked until the transaction ends."""
    if kind not in KINDS:
        raise ValueError(f"no numbering named {kind!r}")
    if count < 1:
        raise ValueError("take at least one number")
    last = session.execute(_TAKE, {"t": tenant_id, "k": kind, "n": count}).scalar_one()
    return last - count + 1


def take_number(session: Session, tenant_id: int, kind: str) -> int:
    return take_numbers(session, tenant_id, kind, 1)


def internal_id(session: Session, model, tenant_id: int, number: int) -> int | None:
    """The internal id of the tenant's row numbered `number`, or None (another tenant's
    number is simply not found: its rows are never looked at)."""
    if not 0 < number < 2 ** 63:
        return None
    return session.scalar(select(model.id).where(model.tenant_id == tenant_id,
                                                 model.number == number))
