"""The body of every error: RFC 9457 problem details, with the faults by line and field."""
from __future__ import annotations

from marshmallow import Schema, fields


class LineErrorSchema(Schema):
    line = fields.Integer(allow_none=True, metadata={"description": "None: the request as a whole"})
    field = fields.String(allow_none=True)
    code = fields.String(metadata={"example": "invalid_amount"})
    message = fields.String()


class ProblemSchema(Schema):
    """RFC 9457 problem details, with the faults of the request by line and field."""
    type = fields.String(metadata={"example": "about:blank"})
    status = fields.Integer()
    title = fields.String()
    detail = fields.String()
    errors = fields.List(fields.Nested(LineErrorSchema))
