"""Reference data: retailers, share rules, members (one or in bulk)."""
from __future__ import annotations

import datetime as dt

from flask import request
from flask_smorest import Blueprint

from api.auth import current, record, requires
from api.database import db
from api.errors import Problem
from api.schemas.catalog import (ImportOut, MemberIn, MemberOut, RetailerIn, RetailerOut,
                                 ShareRuleIn, ShareRuleOut)
from api.tenancy import tenant_policy
from settlement.catalog import service as catalog
from settlement.commissions.rules import RuleError, RuleInput, create_rule
from settlement.money import format_amount, format_rate_ppm

blp = Blueprint("catalog", __name__, description="Retailers, share rules and members")
MAX_IMPORT_BYTES = 64 * 1024 * 1024


@blp.route("/retailers/<slug>", methods=["PUT"])
@requires("admin")
@blp.arguments(RetailerIn)
@blp.response(200, RetailerOut)
def put_retailer(body, slug):
    try:
        retailer, created = catalog.upsert_retailer(
            db(), current().tenant_id, slug, body["name"], body["category"], body["network_ids"],
            confirm_after_days=body["confirm_after_days"])
    except catalog.CatalogError as exc:
        raise Problem(422, "Invalid retailer", str(exc), exc.errors)
    record("retailer.created" if created else "retailer.updated", "retailer", slug, body)
    db().commit()
    return {"slug": retailer.slug, "name": retailer.name, "category": retailer.category,
            "network_ids": catalog.network_ids_of(db(), current().tenant_id, retailer.id),
            "confirm_after_days": retailer.confirm_after_days}


@blp.route("/share-rules", methods=["POST"])
@requires("admin")
@blp.arguments(ShareRuleIn)
@blp.response(201, ShareRuleOut)
def post_share_rule(body):
    policy = tenant_policy()
    try:
        rule = create_rule(db(), current().tenant_id, policy.minor_digits, RuleInput(**body))
    except RuleError as exc:
        status = 409 if exc.code == "ambiguous_rule" else 422
        raise Problem(status, "Share rule refused", exc.message,
                      [{"line": None, "field": exc.field, "code": exc.code,
                        "message": exc.message}])
    record("share_rule.created", "share_rule", rule.number, body)
    db().commit()
    return {"id": rule.number, "retailer": body["retailer"], "category": rule.category,
            "kind": rule.kind,
            "rate": None if rule.rate_ppm is None else format_rate_ppm(rule.rate_ppm),
            "amount": None if rule.amount is None else format_amount(rule.amount,
                                                                     policy.minor_digits),
            "valid_from": rule.valid_from, "valid_to": rule.valid_to,
            "priority": rule.priority, "category_only": rule.category_only}


def _today() -> dt.date:
    return dt.date.today() + dt.timedelta(days=1)  # a member joining "today" anywhere on earth


@blp.route("/members/<external_id>", methods=["PUT"])
@requires("admin")
@blp.arguments(MemberIn)
@blp.response(200, MemberOut)
def put_member(body, external_id):
    if not request.get_data(cache=True):
        # A PUT states the member; an empty body (not even {}) is a client's mistake.
        raise Problem(400, "Bad Request", "send the member as a JSON object ({} for none)",
                      [{"line": None, "field": None, "code": "empty_body",
                        "message": "the body is empty"}])
    batch = catalog.MemberBatch()
    catalog.check_member(None, {"external_id": external_id, **body}, batch, _today())
    if batch.errors:
        raise Problem(422, "Invalid member", "the member has invalid fields", batch.errors)
    policy = tenant_policy()
    tenant_id = current().tenant_id
    result = catalog.upsert_members(db(), tenant_id, policy.currency, batch,
                                    f"member:{external_id}")
    record("member.upserted", "member", external_id, result)
    db().commit()
    member = catalog.member_by_external_id(db(), tenant_id, external_id)
    return {"external_id": member.external_id, "name": member.name, "email": member.email,
            "joined_at": member.joined_at, "referred_by": member.referred_by,
            "payout_method": member.payout_method, "created": result["created"] == 1}


@blp.route("/members/import", methods=["POST"])
@requires("admin")
@blp.response(200, ImportOut)
@blp.doc(requestBody={"content": {"text/csv": {"schema": {"type": "string"}},
                                  "application/x-ndjson": {"schema": {"type": "string"}}}})
def import_members():
    """Bulk members, CSV (header: the member fields) or NDJSON. All or nothing: one bad
    line refuses the file, with every problem listed."""
    media = "csv" if request.mimetype in ("text/csv", "text/plain") else (
        "ndjson" if "ndjson" in request.mimetype else None)
    if media is None:
        raise Problem(415, "Unsupported Media Type", "send text/csv or application/x-ndjson")
    if (request.content_length or 0) > MAX_IMPORT_BYTES:
        raise Problem(413, "Payload Too Large", f"at most {MAX_IMPORT_BYTES} bytes")
    body = request.stream.read(MAX_IMPORT_BYTES + 1)
    if len(body) > MAX_IMPORT_BYTES:
        raise Problem(413, "Payload Too Large", f"at most {MAX_IMPORT_BYTES} bytes")
    batch = catalog.parse_member_file(body, media, _today())
    if batch.errors:
        raise Problem(422, "Invalid members", f"{len(batch.errors)} problem(s); nothing imported",
                      batch.errors[:1000])
    try:
        result = catalog.upsert_members(db(), current().tenant_id, tenant_policy().currency,
                                        batch, f"import:{len(batch.records)}")
    except catalog.CatalogError as exc:
        raise Problem(422, "Invalid members", str(exc), exc.errors)
    record("members.imported", "member", None, result)
    db().commit()
    return result
