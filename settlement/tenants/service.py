"""Tenants: created and updated from their policy file, idempotently."""
from __future__ import annotations

import json
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.models import Tenant
from settlement.tenants.policy import TenantPolicy


class TenantNotFound(LookupError):
    pass


def apply_policy(session: Session, policy: TenantPolicy) -> tuple[Tenant, bool]:
    """Create the tenant or bring it to this policy. Returns (tenant, changed)."""
    document = policy.model_dump_json()
    tenant = session.scalar(select(Tenant).where(Tenant.slug == policy.slug))
    if tenant is None:
        tenant = Tenant(slug=policy.slug, name=policy.name, currency=policy.currency,
                        policy=document)
        session.add(tenant)
        session.flush()
        return tenant, True
    if tenant.currency != policy.currency:
        # Balances are kept in the tenant currency; changing it would rewrite history.
        raise ValueError(f"tenant {policy.slug} is in {tenant.currency}; "
                         f"its currency cannot change to {policy.currency}")
    if tenant.policy == document and tenant.name == policy.name:
        return tenant, False
    tenant.name = policy.name
    tenant.policy = document
    tenant.updated_at = func.now()
    session.flush()
    return tenant, True


def tenant_by_slug(session: Session, slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise TenantNotFound(f"no tenant {slug!r}")
    return tenant


def policy_of(tenant: Tenant) -> TenantPolicy:
    return _parse_policy(tenant.policy)


@lru_cache(maxsize=256)
def _parse_policy(document: str) -> TenantPolicy:
    return TenantPolicy.model_validate(json.loads(document))
