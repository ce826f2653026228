"""API keys (random, shown once, stored hashed, one tenant and one role) and the audit log."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.models import ApiKey, AuditEvent

ROLES = ("uploader", "operator", "approver", "admin")
# What each role may do besides its own job: an admin can do everything, an operator reads.
ROLE_GRANTS = {
    "uploader": {"uploader", "report_status"},
    "operator": {"operator", "reader", "report_status"},
    "approver": {"approver", "reader", "report_status"},
    "admin": {"admin", "operator", "uploader", "reader", "report_status"},
}
KEY_PREFIX = "sk_"


@dataclass(frozen=True)
class Principal:
    tenant_id: int
    key_id: int | None
    role: str
    name: str  # "key:<id>" for API keys, "cli:<label>" for the command line

    def may(self, need: str) -> bool:
        return need in ROLE_GRANTS.get(self.role, set())


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(session: Session, tenant_id: int, role: str, label: str | None = None) -> str:
    """Make a key and return it in clear: the only time it is ever seen."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    session.add(ApiKey(tenant_id=tenant_id, prefix=prefix, secret_hash=_digest(key),
                       role=role, label=label))
    session.flush()
    return key


def authenticate(session: Session, presented: str) -> Principal | None:
    if not presented.startswith(KEY_PREFIX) or len(presented) > 200:
        return None
    prefix = presented[len(KEY_PREFIX):].split("_", 1)[0]
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, _digest(presented)):
        return None
    return Principal(row.tenant_id, row.id, row.role, f"key:{row.id}")


def revoke_key(session: Session, tenant_id: int, key_id: int) -> bool:
    row = session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = dt.datetime.now(dt.timezone.utc)
    return True


def audit(session: Session, principal: Principal, action: str, object_type: str,
          object_id: str | int | None = None, detail: dict | None = None) -> None:
    session.add(AuditEvent(
        tenant_id=principal.tenant_id, principal=principal.name, action=action,
        object_type=object_type, object_id=None if object_id is None else str(object_id),
        detail=None if detail is None else json.dumps(detail, default=str, sort_keys=True)))
