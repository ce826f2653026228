"""Settlement runs: planning, approval, and the pages of items and skipped members."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from settlement.runs.plan import SKIP_REASONS


class RunIn(Schema):
    payout_date = fields.Date(required=True)


class ApproveIn(Schema):
    plan_hash = fields.String(load_default=None, validate=validate.Length(64, 64))


class ItemsQuery(Schema):
    status = fields.String(load_default=None)
    method = fields.String(load_default=None)
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=500, validate=validate.Range(1, 5000))


class SkippedQuery(Schema):
    reason = fields.String(load_default=None, validate=validate.OneOf(SKIP_REASONS))
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=500, validate=validate.Range(1, 5000))


class SkippedOut(Schema):
    member = fields.String()
    method = fields.String(allow_none=True)
    reason = fields.String()
    amount = fields.String(metadata={"description": "left in the member's balance"})


class SkippedPageOut(Schema):
    skipped = fields.List(fields.Nested(SkippedOut))
    next_cursor = fields.String(allow_none=True)
