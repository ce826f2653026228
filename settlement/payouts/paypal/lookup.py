"""The batch of the run item a PayPal webhook event names, found by the item's reference.

PayPal calls without our API keys, so on PostgreSQL the web's role (which sees no tenant
without one) asks settle_paypal_item_batch (revision 0015), which answers this and
nothing more.
"""
from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from settlement.db import is_postgres
from settlement.models import RunBatch, RunItem, Tenant
from settlement.payouts.paypal.reference import ItemReference


def batch_of_item(session: Session, reference: ItemReference) -> Row | None:
    """(tenant_id, batch_id, method, status) of the batch holding the item, or None."""
    if is_postgres(session.bind):
        return session.execute(text(
            "SELECT tenant_id, batch_id, method, status "
            "FROM settle_paypal_item_batch(:slug, :run, :item)"),
            {"slug": reference.slug, "run": reference.run_id,
             "item": reference.item_id}).first()
    return session.execute(
        select(Tenant.id.label("tenant_id"), RunBatch.id.label("batch_id"),
               RunBatch.method, RunBatch.status)
        .join(RunItem, RunItem.tenant_id == Tenant.id)
        .join(RunBatch, (RunBatch.tenant_id == RunItem.tenant_id)
              & (RunBatch.id == RunItem.batch_id))
        .where(Tenant.slug == reference.slug, RunItem.run_id == reference.run_id,
               RunItem.id == reference.item_id)).first()
