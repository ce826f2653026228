"""Referrals: a member's referrals and their bonuses; held referrals and their review."""
from __future__ import annotations

from flask_smorest import Blueprint

from api.auth import current, record, requires
from api.database import db
from api.errors import Problem
from api.paging import decode_number_cursor, encode_cursor
from api.schemas.referrals import (MemberReferralsOut, ReferralOut, ReferralPageOut,
                                   ReferralQuery, ReviewIn)
from api.tenancy import tenant_policy
from settlement.catalog.service import member_by_external_id
from settlement.referrals import service as referrals, views

blp = Blueprint("referrals", __name__, description="Referral bonuses")


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
    # Referral cursors have always taken 0 (the start) as well.
    after = decode_number_cursor(query["cursor"], lowest=0) or 0
    page = views.list_referrals(db(), current().tenant_id, policy, status=query["status"],
                                after=after, limit=query["limit"] + 1)
    more = len(page) > query["limit"]
    page = page[:query["limit"]]
    return {"currency": policy.currency, "referrals": page,
            "next_cursor": encode_cursor(page[-1]["id"]) if more else None}


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
