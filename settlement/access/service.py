"""API keys (random, shown once, stored hashed, one tenant and one role) and the audit log."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from settlement.models import ApiKey, AuditEvent
from settlement.numbering import take_number
from settlement.sql import is_postgres

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


def key_digest(key: str) -> str:
    """What is stored of a key, and what the web's database session proves its tenant with."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(session: Session, tenant_id: int, role: str, label: str | None = None,
               expires_at: dt.datetime | None = None) -> str:
    """Make a key and return it in clear: the only time it is ever seen."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if expires_at is not None and expires_at.tzinfo is None:
        raise ValueError("expires_at needs a time zone")
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    session.add(ApiKey(tenant_id=tenant_id, number=take_number(session, tenant_id, "key"),
                       prefix=prefix, secret_hash=key_digest(key),
                       role=role, label=label, expires_at=expires_at))
    session.flush()
    return key


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive date-times; ours are all UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.timezone.utc)


def is_live(row: ApiKey, now: dt.datetime | None = None) -> bool:
    """Neither revoked nor expired: checked on every request, so both take effect at once."""
    now = now or dt.datetime.now(dt.timezone.utc)
    expires_at = _utc(row.expires_at)
    return row.revoked_at is None and (expires_at is None or now < expires_at)


def authenticate(session: Session, presented: str) -> Principal | None:
    if not presented.startswith(KEY_PREFIX) or len(presented) > 200:
        return None
    return principal_of_hash(session, key_digest(presented))


def principal_of_hash(session: Session, secret_hash: str) -> Principal | None:
    """The live key whose sha256 this is. Looked up by the hash, not the key: what an index
    comparison could reveal about the stored value is about a hash, which the caller can
    steer only by finding preimages. On PostgreSQL through settle_key_principal (revision
    0015): before its tenant is known, the web's role sees no key at all."""
    if is_postgres(session):
        row = session.execute(text(
            "SELECT tenant_id, key_id, role FROM settle_key_principal(:secret_hash)"),
            {"secret_hash": secret_hash}).first()
        if row is None:
            return None
        return Principal(row.tenant_id, row.key_id, row.role, f"key:{row.key_id}")
    found = session.scalar(select(ApiKey).where(ApiKey.secret_hash == secret_hash))
    if found is None or not is_live(found):
        return None
    return Principal(found.tenant_id, found.id, found.role, f"key:{found.id}")


def revoke_key(session: Session, tenant_id: int, key_id: int) -> bool:
    """Revoke a key of the tenant at once; False when it has no such unrevoked key.
    `key_id` is the tenant's number of the key, as list_keys shows it."""
    row = session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant_id,
                                              ApiKey.number == key_id))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = dt.datetime.now(dt.timezone.utc)
    session.flush()
    return True


@dataclass(frozen=True)
class KeyView:
    """A key as it may be shown: never its secret."""
    id: int  # the tenant's number of the key
    prefix: str
    role: str
    label: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    live: bool


def list_keys(session: Session, tenant_id: int) -> list[KeyView]:
    now = dt.datetime.now(dt.timezone.utc)
    rows = session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id)
                           .order_by(ApiKey.id))
    return [KeyView(r.number, r.prefix, r.role, r.label, _utc(r.created_at), _utc(r.expires_at),
                    _utc(r.revoked_at), is_live(r, now)) for r in rows]


def rotate_key(session: Session, tenant_id: int, key_id: int,
               grace: dt.timedelta = dt.timedelta(0),
               expires_at: dt.datetime | None = None) -> str | None:
    """A new key of the same role and label; the old one stops working after `grace`
    (at once by default). None when the tenant has no such live key (`key_id`: the
    tenant's number of the key)."""
    row = session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant_id,
                                              ApiKey.number == key_id))
    if row is None or not is_live(row):
        return None
    key = create_key(session, tenant_id, row.role, row.label, expires_at)
    now = dt.datetime.now(dt.timezone.utc)
    if grace > dt.timedelta(0):
        old_expiry = _utc(row.expires_at)
        row.expires_at = min(now + grace, old_expiry) if old_expiry else now + grace
    else:
        row.revoked_at = now
    session.flush()
    return key


def audit(session: Session, principal: Principal, action: str, object_type: str,
          object_id: str | int | None = None, detail: dict | None = None) -> None:
    session.add(AuditEvent(
        tenant_id=principal.tenant_id, principal=principal.name, action=action,
        object_type=object_type, object_id=None if object_id is None else str(object_id),
        detail=None if detail is None else json.dumps(detail, default=str, sort_keys=True)))
