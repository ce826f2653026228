"""A member's money: balance (in points too, on point sites) and statement."""
from __future__ import annotations

from marshmallow import Schema, fields


class ExpiringOut(Schema):
    points = fields.Integer()
    on = fields.String(metadata={"description": "the date they expire"})


class PointsBalanceOut(Schema):
    """Point sites (tenants with exits or expiry): the balance in points."""

    points_per_unit = fields.Integer(metadata={"description": "points per unit of currency"})
    available = fields.Integer()
    reserved = fields.Integer()
    exchanged = fields.Integer()
    expired = fields.Integer()
    expiring = fields.Nested(ExpiringOut, allow_none=True, metadata={
        "description": "points expiring within 30 days, and when"})


class BalanceOut(Schema):
    currency = fields.String()
    pending = fields.String()
    available = fields.String()
    reserved = fields.String()
    paid = fields.String()
    points = fields.Nested(PointsBalanceOut, allow_none=True)


class StatementEntry(Schema):
    entry_id = fields.Integer()
    kind = fields.String()
    memo = fields.String(allow_none=True)
    created_at = fields.DateTime()
    changes = fields.Dict(keys=fields.String(), values=fields.String())


class StatementOut(Schema):
    currency = fields.String()
    balance = fields.Nested(BalanceOut)
    entries = fields.List(fields.Nested(StatementEntry))
    commissions = fields.List(fields.Dict())
    payouts = fields.List(fields.Dict(), metadata={
        "description": "the member's payouts, newest first, with the reason of a failure"})
