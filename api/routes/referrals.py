"""Referrals: a member's referrals and their bonuses; held referrals and their review."""
from __future__ import annotations

import base64

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api.auth import current, record, requires
from api.database import db
from api.errors import Problem
from api.tenancy import tenant_policy
from settlement.catalog.service import member_by_external_id
from settlement.referrals import service as referrals, views

blp = Blueprint("referrals", __name__, description="Referral bonuses")


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
    status = fields.String(load_default=None, validate=validate.OneOf(referrals.STATUSES))
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class ReviewIn(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))


def _cursor(raw: str | None) -> int:
    if not raw:
        return 0
    try:
        value = int(base64.urlsafe_b64decode(raw.encode() + b"==").decode())
        if not 0 <= value < 2 ** 63:
            raise ValueError("out of range")
        return value
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "Bad Request", "cursor is not one this API gave",
                      [{"line": None, "field": "cursor", "code": "invalid_cursor",
                        "message": "use the next_cursor of the previous page"}])


@blp.route("/members/<external_id>/referrals")
@requires("reader")
@blp.response(200, MemberReferralsOut)
def member_referrals(external_id):
    """The member's referrals, as friend and as referrer, with the status of the member's
    own bonus in each."""
    tenant_id = current().tenant_id
    member = member_by_external_id(db(), tenant_id, external_id)
    if member is None:
        raise Problem(404, "Not Found", f"no member {external_id}")
    policy = tenant_policy()
    return {"member": member.external_id, "currency": policy.currency,
            "referrals": views.member_referrals(db(), tenant_id, policy, member.id)}


@blp.route("/referrals")
@requires("reader")
@blp.arguments(ReferralQuery, location="query")
@blp.response(200, ReferralPageOut)
def list_referrals(query):
    """The tenant's referrals in id order. `status` filters on the stored status (open,
    pending, earned, expired, held, refused), e.g. `status=held`: the ones waiting for
    review. In the answer an open referral shows as pending, stage awaiting_purchase."""
    policy = tenant_policy()
    page = views.list_referrals(db(), current().tenant_id, policy, status=query["status"],
                                after=_cursor(query["cursor"]), limit=query["limit"] + 1)
    more = len(page) > query["limit"]
    page = page[:query["limit"]]
    return {"currency": policy.currency, "referrals": page,
            "next_cursor": base64.urlsafe_b64encode(str(page[-1]["id"]).encode()).decode()
            .rstrip("=") if more else None}


@blp.route("/members/<external_id>/referral/review", methods=["POST"])
@requires("operator")
@blp.arguments(ReviewIn)
@blp.response(200, ReferralOut)
def review(body, external_id):
    """Decide on the held referral of this friend: `approve` lets it qualify despite the
    guard that held it, `reject` refuses it for good."""
    tenant_id = current().tenant_id
    friend = member_by_external_id(db(), tenant_id, external_id)
    referral_id = None if friend is None else referrals.referral_of(db(), tenant_id, friend.id)
    if referral_id is None:
        raise Problem(404, "Not Found", f"no referral of a member {external_id}")
    try:
        referrals.review(db(), tenant_id, referral_id, body["decision"], current().name)
    except referrals.ReferralError:
        db().rollback()
        raise
    record(f"referral.{body['decision']}d", "referral", referral_id,
           {"friend": external_id})
    db().commit()
    (view,) = [v for v in views.member_referrals(db(), tenant_id, tenant_policy(), friend.id)
               if v["id"] == referral_id]
    return view
