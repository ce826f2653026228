"""The steps of a run that a job takes on its own, each in its own transaction."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from settlement.db import tenant_session
from settlement.models import RunBatch, SettlementRun, Tenant
from settlement.runs.execute import start_execution
from settlement.states import RunStatus


def start_run(engine: Engine, tenant_id: int, run_id: int) -> list[int]:
    """Start (or resume) an approved run: its open batches, in the order to work them."""
    with tenant_session(engine, tenant_id) as session:
        batch_ids = start_execution(session, tenant_id, run_id)
        session.commit()
    return batch_ids


def tenant_if_run_completed(engine: Engine, tenant_id: int, batch_id: int) -> str | None:
    """The tenant's slug when the run of this batch has completed (with failures or not),
    else None."""
    with tenant_session(engine, tenant_id) as session:
        run_status, slug = session.execute(
            select(SettlementRun.status, Tenant.slug)
            .join(RunBatch, (RunBatch.tenant_id == SettlementRun.tenant_id)
                  & (RunBatch.run_id == SettlementRun.id))
            .join(Tenant, Tenant.id == SettlementRun.tenant_id)
            .where(RunBatch.tenant_id == tenant_id, RunBatch.id == batch_id)).one()
    completed = (RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_FAILURES)
    return slug if run_status in completed else None
