"""Bearer API keys: who is calling, for which tenant, in which role."""
from __future__ import annotations

from functools import wraps

from flask import g, request

from api.database import db
from api.errors import Problem
from settlement.access.service import Principal, audit, authenticate
from settlement.db import set_tenant


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
            set_tenant(db(), principal.tenant_id)  # PostgreSQL row-level security backstop
            return view(*args, **kwargs)
        return wrapper
    return decorate


def record(action: str, object_type: str, object_id=None, detail: dict | None = None) -> None:
    audit(db(), current(), action, object_type, object_id, detail)
