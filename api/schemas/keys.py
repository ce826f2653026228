"""API keys as the admin sees them: never their secrets."""
from __future__ import annotations

from marshmallow import Schema, fields


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
