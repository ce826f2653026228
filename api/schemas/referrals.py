"""Referrals and their bonuses, and the review of a held one."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from settlement.referrals.service import STATUSES


class ReasonOut(Schema):
    code = fields.String()
    message = fields.String()


class BonusOut(Schema):
    member = fields.String(allow_none=True)
    amount = fields.String(metadata={"description": "cash value posted, major units"})
    points = fields.Integer(allow_none=True, metadata={"description": "a points bonus"})
    points_method = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "pending|earned|paid|refused"})
    confirmed_on = fields.String(allow_none=True)
    reason = fields.Nested(ReasonOut, allow_none=True)


class PurchaseOut(Schema):
    source = fields.String()
    transaction_id = fields.String()
    event_date = fields.String()
    status = fields.String()


class VoidedOut(Schema):
    side = fields.String()
    transaction_id = fields.String(allow_none=True)
    amount = fields.String()


class ReferralOut(Schema):
    id = fields.Integer()
    role = fields.String(metadata={"description": "friend|referrer (member listings)"})
    friend = fields.String()
    referrer = fields.String()
    joined_at = fields.String(allow_none=True)
    window_end = fields.String(allow_none=True, metadata={
        "description": "exclusive: purchases dated before it qualify"})
    status = fields.String(metadata={
        "description": "pending|earned|paid|expired|held|refused"})
    stage = fields.String(allow_none=True, metadata={
        "description": "awaiting_purchase|awaiting_confirmation while pending"})
    reason = fields.Nested(ReasonOut, allow_none=True)
    purchase = fields.Nested(PurchaseOut, allow_none=True)
    bonuses = fields.Dict(keys=fields.String(), values=fields.Nested(BonusOut))
    voided = fields.List(fields.Nested(VoidedOut))


class MemberReferralsOut(Schema):
    member = fields.String()
    currency = fields.String()
    referrals = fields.List(fields.Nested(ReferralOut))


class ReferralPageOut(Schema):
    currency = fields.String()
    referrals = fields.List(fields.Nested(ReferralOut))
    next_cursor = fields.String(allow_none=True)


class ReferralQuery(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class ReviewIn(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
