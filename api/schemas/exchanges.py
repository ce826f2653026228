"""Point exchanges, and the members whose points expire soon."""
from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from settlement.exchanges.models import STATES


class ExchangeIn(Schema):
    class Meta:
        unknown = INCLUDE  # unknown fields are refused by name in settlement/exchanges

    exit = fields.Raw(required=True, metadata={"type": "string", "description":
                                               "an exit of the tenant policy"})
    value = fields.Raw(metadata={"type": "integer", "description":
                                 "what to receive, in the exit's unit (yen, partner points)"})
    points = fields.Raw(metadata={"type": "integer", "description":
                                  "what to spend (the fee comes on top)"})
    use_campaign = fields.Raw(metadata={"type": "boolean", "description":
                                        "false: the exit's regular rate even while a "
                                        "campaign runs (default true)"})
    destination = fields.Raw(metadata={"type": "object", "description":
                                       "bank transfer: bank_code, branch_code, account_type "
                                       "(ordinary|current|savings), account_number, "
                                       "account_name (katakana); points transfer: account"})


class ExchangeOut(Schema):
    id = fields.Integer(metadata={"description": "the member's own exchange number (1, 2, "
                                                 "3...)"})
    exit = fields.String()
    kind = fields.String()
    partner = fields.String()
    status = fields.String(metadata={"description": "|".join(STATES)})
    value = fields.Integer()
    bonus_value = fields.Integer(metadata={"description": "a bonus campaign's extra value"})
    points = fields.Integer()
    fee_points = fields.Integer()
    points_debited = fields.Integer()
    amount = fields.String(metadata={"description": "points debited in the tenant currency"})
    campaign = fields.String(allow_none=True)
    requested_on = fields.String()
    credit_on = fields.String(metadata={"description": "expected crediting date"})
    failure_reason = fields.String(allow_none=True)
    gift_code = fields.String(allow_none=True, metadata={
        "description": "only on the member's own look-up of a delivered gift code"})


class ExchangeListOut(Schema):
    member = fields.String()
    exchanges = fields.List(fields.Nested(ExchangeOut))


class ExchangeQuery(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATES))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


EXPIRY_NOTICE_DAYS = 30


class ExpiringQuery(Schema):
    within = fields.Integer(load_default=EXPIRY_NOTICE_DAYS, validate=validate.Range(0, 366))


class ExpiringMemberOut(Schema):
    member = fields.String()
    points = fields.Integer()
    amount = fields.String(metadata={"description": "in the tenant currency"})
    expires_on = fields.String()


class ExpiringListOut(Schema):
    within = fields.Integer()
    members = fields.List(fields.Nested(ExpiringMemberOut))
