"""API keys of the caller's tenant (admin): list them (never their secrets) and revoke one,
effective from the next request (every request looks its key up)."""
from __future__ import annotations

from flask_smorest import Blueprint

from api.auth import current, record, requires
from api.database import db
from api.errors import Problem
from api.schemas.keys import KeyList
from settlement.access.service import list_keys, revoke_key

blp = Blueprint("keys", __name__, description="API keys")


@blp.route("/keys", methods=["GET"])
@requires("admin")
@blp.response(200, KeyList)
def keys():
    """The tenant's keys, oldest first."""
    return {"keys": list_keys(db(), current().tenant_id)}


@blp.route("/keys/<int:key_id>", methods=["DELETE"])
@requires("admin")
@blp.response(204)
def revoke(key_id):
    """Revoke a key of the tenant: it answers 401 from the next request on. 404 for a key
    that is not the tenant's or is already revoked."""
    session = db()
    if not revoke_key(session, current().tenant_id, key_id):
        raise Problem(404, "Not Found", f"no unrevoked key {key_id}")
    record("key.revoked", "api_key", key_id)
    session.commit()
