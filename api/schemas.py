"""Request and response shapes (marshmallow), published as OpenAPI by flask-smorest.
Amounts are decimal strings in major units; the services parse them strictly."""
from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates


class Strict(Schema):
    class Meta:
        unknown = RAISE


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


class ReportQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    format = fields.String(load_default="generic", validate=validate.OneOf(
        ["generic", "cj", "impact", "awin", "rakuten"]))
    source = fields.String(load_default=None, validate=validate.Regexp(
        r"^[A-Za-z0-9._-]{1,64}$"), metadata={
        "description": "network formats: the network account the report belongs to, one of "
                       "the tenant's `networks.<format>.accounts` (default: the only one; a "
                       "network without declared accounts has one, named after it); the "
                       "same transaction of the same account is one commission, and any "
                       "other value answers 422 naming the accounts. generic: the sender's "
                       "own label (default `generic`), part of each line's identity"})
    as_of = fields.AwareDateTime(load_default=None, metadata={
        "description": "when the network produced the report (default: now); from "
                       "2000-01-01 to now"})

    @validates("as_of")
    def _as_of_window(self, value, **_kwargs):
        import datetime as dt

        from settlement.reports.service import as_of_problem
        problem = as_of_problem(value, dt.datetime.now(dt.timezone.utc)) if value else None
        if problem is not None:
            raise ValidationError(problem.message)


class LineErrorOut(Schema):
    line = fields.Integer(allow_none=True)
    field = fields.String(allow_none=True)
    code = fields.String()
    message = fields.String()


class Counts(Schema):
    lines = fields.Integer()
    inserted = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    stale = fields.Integer()
    rejected = fields.Integer()
    unattributed = fields.Integer()
    unmatched = fields.Integer(metadata={
        "description": "corrections whose original this account never reported: kept, "
                       "listed with code unknown_original, moving no money until it arrives"})


class ReportOut(Schema):
    id = fields.Integer(metadata={"description": "the tenant's own report number (1, 2, "
                                                 "3...): says nothing about other tenants"})
    format = fields.String()
    source = fields.String()
    status = fields.String()
    duplicate = fields.Boolean()
    size_bytes = fields.Integer()
    as_of = fields.DateTime()
    counts = fields.Nested(Counts)
    errors = fields.List(fields.Nested(LineErrorOut))
    errors_truncated = fields.Boolean()


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
