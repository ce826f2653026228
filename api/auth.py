"""Bearer API keys: who is calling, for which tenant, in which role."""
from __future__ import annotations

from functools import wraps

from flask import g, request

from api.database import db
from api.errors import Problem
from settlement.access.service import Principal, audit, authenticate, key_digest
from settlement.db import bind_key


def current() -> Principal:
    return g.principal


def requires(need: str):
    """The caller must hold a key whose role grants `need` (see ROLE_GRANTS)."""
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            scheme, _, key = header.partition(" ")
            principal = authenticate(db(), key.strip()) if scheme.lower() == "bearer" else None
            if principal is None:
                raise Problem(401, "Unauthorized", "send Authorization: Bearer <api key>")
            if not principal.may(need):
                raise Problem(403, "Forbidden", f"a {principal.role} key cannot do this")
            g.principal = principal
            # PostgreSQL's row-level security: the session proves its tenant with the key.
            bind_key(db(), key_digest(key.strip()))
            return view(*args, **kwargs)
        return wrapper
    return decorate


def record(action: str, object_type: str, object_id=None, detail: dict | None = None) -> None:
    audit(db(), current(), action, object_type, object_id, detail)
