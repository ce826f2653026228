"""API keys of the caller's tenant (admin): list them (never their secrets) and revoke one,
effective from the next request (every request looks its key up)."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from api.auth import current, record, requires
from api.database import db
from api.errors import Problem
from settlement.access.service import list_keys, revoke_key

blp = Blueprint("keys", __name__, description="API keys")


class KeyOut(Schema):
    id = fields.Integer(metadata={"description": "the tenant's own key number"})
    prefix = fields.String(metadata={"description": "the public part: sk_<prefix>_..."})
    role = fields.String()
    label = fields.String(allow_none=True)
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    live = fields.Boolean(metadata={"description": "neither revoked nor expired"})


class KeyList(Schema):
    keys = fields.List(fields.Nested(KeyOut))


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
