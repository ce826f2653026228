"""Retailers, share rules and members as the API takes and answers them. Amounts are
decimal strings in major units; the services parse them strictly."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.common import Strict


class RetailerIn(Strict):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    category = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(1, 100))
    network_ids = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    confirm_after_days = fields.Integer(load_default=None, allow_none=True, metadata={
        "description": "this retailer's holding period for network lines without a status "
                       "(0 to 730 days), overriding the tenant's networks.X.confirm_after_days"})


class RetailerOut(Schema):
    slug = fields.String()
    name = fields.String()
    category = fields.String(allow_none=True)
    network_ids = fields.Dict(keys=fields.String(), values=fields.String())
    confirm_after_days = fields.Integer(allow_none=True)


class MemberIn(Strict):
    name = fields.String(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    joined_at = fields.String(load_default=None, allow_none=True,
                              metadata={"description": "ISO date"})
    referred_by = fields.String(load_default=None, allow_none=True)
    address_line1 = fields.String(load_default=None, allow_none=True)
    address_line2 = fields.String(load_default=None, allow_none=True)
    city = fields.String(load_default=None, allow_none=True)
    region = fields.String(load_default=None, allow_none=True)
    postal_code = fields.String(load_default=None, allow_none=True)
    country = fields.String(load_default=None, allow_none=True)
    payout_method = fields.String(load_default=None, allow_none=True,
                                  validate=validate.OneOf(["check", "paypal", "amex_mr", "bilt"]))
    paypal_email = fields.String(load_default=None, allow_none=True)
    amex_account = fields.String(load_default=None, allow_none=True)
    amex_card = fields.String(load_default=None, allow_none=True)
    bilt_account = fields.String(load_default=None, allow_none=True)
    bilt_tier = fields.String(load_default=None, allow_none=True)


class MemberOut(Schema):
    external_id = fields.String()
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    joined_at = fields.Date(allow_none=True)
    referred_by = fields.String(allow_none=True)
    payout_method = fields.String(allow_none=True)
    created = fields.Boolean()


class ImportOut(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()


class ShareRuleIn(Strict):
    retailer = fields.String(load_default=None, allow_none=True)
    category = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 100))
    kind = fields.String(required=True, validate=validate.OneOf(
        ["percent_of_sale", "percent_of_commission", "fixed"]))
    rate = fields.String(load_default=None, allow_none=True,
                         metadata={"description": "percent, e.g. \"6.5\""})
    amount = fields.String(load_default=None, allow_none=True,
                           metadata={"description": "major units, for fixed rules"})
    valid_from = fields.Date(load_default=None, allow_none=True)
    valid_to = fields.Date(load_default=None, allow_none=True,
                           metadata={"description": "exclusive"})
    priority = fields.Integer(load_default=0, validate=validate.Range(-1000, 1000))
    category_only = fields.Boolean(load_default=False)
    description = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(0, 200))


class ShareRuleOut(Schema):
    id = fields.Integer(metadata={"description": "the tenant's own rule number"})
    retailer = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    kind = fields.String()
    rate = fields.String(allow_none=True)
    amount = fields.String(allow_none=True)
    valid_from = fields.Date(allow_none=True)
    valid_to = fields.Date(allow_none=True)
    priority = fields.Integer()
    category_only = fields.Boolean()
