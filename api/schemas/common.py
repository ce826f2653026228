"""What request shapes share: refusing unknown fields, and a page's cursor and size."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate


class Strict(Schema):
    class Meta:
        unknown = RAISE


class PageQuery(Schema):
    cursor = fields.String(load_default=None, metadata={
        "description": "next_cursor of the previous page"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
