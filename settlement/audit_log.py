"""Reading the audit log, a page at a time (newest first), for the console."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.lists import Page, _page
from settlement.models import AuditEvent


def audit_page(session: Session, tenant_id: int, *, action: str | None = None,
               principal: str | None = None, object_type: str | None = None,
               object_id: str | None = None, after: int | None, limit: int) -> Page:
    """`action`: actions starting with it ("run." finds every run action); the other
    filters match exactly."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if principal:
        query = query.where(AuditEvent.principal == principal)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    return _page(session, query, AuditEvent.id, after, limit, newest_first=True)


def audit_actions(session: Session, tenant_id: int) -> list[str]:
    """The actions this tenant's log holds, for the filter's choices."""
    return list(session.scalars(select(AuditEvent.action).where(
        AuditEvent.tenant_id == tenant_id).distinct().order_by(AuditEvent.action)))
