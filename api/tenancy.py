"""The caller's tenant and its policy."""
from __future__ import annotations

from api.auth import current
from api.database import db
from settlement.models import Tenant
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import policy_of


def tenant_policy() -> TenantPolicy:
    return policy_of(db().get(Tenant, current().tenant_id))
