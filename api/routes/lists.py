"""Lists of a tenant's objects, a page at a time: reports, settlement runs, retailers,
share rules, members (settlement/lists.py). Each answers `{<objects>: [...], next_cursor}`;
pass `next_cursor` back as `cursor` for the next page (null: the last page)."""
from __future__ import annotations

import base64

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api.auth import current, requires
from api.database import db
from api.errors import Problem
from api.routes.reports import report_view
from api.schemas import ReportOut, RetailerOut, ShareRuleOut
from api.tenancy import tenant_policy
from settlement import lists
from settlement.catalog.service import member_by_external_id
from settlement.money import format_amount, format_rate_ppm
from settlement.reports.formats import FORMATS

blp = Blueprint("lists", __name__, description="Lists of a tenant's objects, cursor-paginated")
REPORT_STATUSES = ("queued", "processing", "completed", "failed")
RUN_STATUSES = ("planned", "approved", "executing", "completed", "completed_with_failures",
                "cancelled")


class PageQuery(Schema):
    cursor = fields.String(load_default=None, metadata={
        "description": "next_cursor of the previous page"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class ReportListQuery(PageQuery):
    status = fields.String(load_default=None, validate=validate.OneOf(REPORT_STATUSES))
    format = fields.String(load_default=None, validate=validate.OneOf(sorted(FORMATS)))
    since = fields.AwareDateTime(load_default=None, metadata={
        "description": "received at or after this moment (ISO 8601 with offset)"})


class RunListQuery(PageQuery):
    status = fields.String(load_default=None, validate=validate.OneOf(RUN_STATUSES))


class ShareRuleListQuery(PageQuery):
    retailer = fields.String(load_default=None, metadata={"description": "retailer slug"})
    active_on = fields.Date(load_default=None, metadata={
        "description": "only the rules in force on this date"})


class MemberListQuery(PageQuery):
    q = fields.String(load_default=None, validate=validate.Length(1, 128), metadata={
        "description": "external id prefix (case-sensitive)"})


class ReportPageOut(Schema):
    reports = fields.List(fields.Nested(ReportOut))
    next_cursor = fields.String(allow_none=True)


class RunSummaryOut(Schema):
    id = fields.Integer(attribute="number", metadata={"description": "the tenant's run number"})
    status = fields.String()
    payout_date = fields.Date()
    cutoff_date = fields.Date()
    currency = fields.String()
    planned_by = fields.String()
    approved_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)


class RunPageOut(Schema):
    runs = fields.List(fields.Nested(RunSummaryOut))
    next_cursor = fields.String(allow_none=True)


class RetailerPageOut(Schema):
    retailers = fields.List(fields.Nested(RetailerOut))
    next_cursor = fields.String(allow_none=True)


class ShareRuleListOut(ShareRuleOut):
    description = fields.String(allow_none=True)


class ShareRulePageOut(Schema):
    share_rules = fields.List(fields.Nested(ShareRuleListOut))
    next_cursor = fields.String(allow_none=True)


class MemberSummaryOut(Schema):
    external_id = fields.String()
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    joined_at = fields.Date(allow_none=True)
    referred_by = fields.String(allow_none=True)
    payout_method = fields.String(allow_none=True)


class MemberPageOut(Schema):
    members = fields.List(fields.Nested(MemberSummaryOut))
    next_cursor = fields.String(allow_none=True)


def decode_cursor(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        value = int(base64.urlsafe_b64decode(raw.encode() + b"==").decode())
        if not 0 < value < 2 ** 63:
            raise ValueError("out of range")
        return value
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "Bad Request", "cursor is not one this API gave",
                      [{"line": None, "field": "cursor", "code": "invalid_cursor",
                        "message": "use the next_cursor of the previous page"}])


def encode_cursor(after: int | None) -> str | None:
    return None if after is None else base64.urlsafe_b64encode(
        str(after).encode()).decode().rstrip("=")


def _bad_cursor() -> Problem:
    return Problem(400, "Bad Request", "cursor is not one this API gave",
                   [{"line": None, "field": "cursor", "code": "invalid_cursor",
                     "message": "use the next_cursor of the previous page"}])


def decode_name_cursor(raw: str | None, lookup) -> int | None:
    """Members and retailers have no public number: their cursor is the last row's
    external id or slug (which the caller sees anyway, where an internal id would tell how
    many all tenants have), turned back into the internal id by `lookup`."""
    if not raw:
        return None
    try:
        name = base64.urlsafe_b64decode(raw.encode() + b"==").decode()
    except (ValueError, UnicodeDecodeError):
        raise _bad_cursor() from None
    found = lookup(name) if name and len(name) <= 128 and "\x00" not in name else None
    if found is None:
        raise _bad_cursor()
    return found


def encode_name_cursor(page, name_of) -> str | None:
    if page.next_after is None:
        return None
    return base64.urlsafe_b64encode(name_of(page.rows[-1]).encode()).decode().rstrip("=")


@blp.route("/reports", methods=["GET"])
@requires("report_status")
@blp.arguments(ReportListQuery, location="query")
@blp.response(200, ReportPageOut)
@blp.doc(tags=["reports"])
def list_reports(query):
    """The tenant's uploaded reports, newest first, with their counts (the line errors are
    on GET /v1/reports/{id})."""
    page = lists.reports_page(db(), current().tenant_id, status=query["status"],
                              fmt=query["format"], since=query["since"],
                              after=decode_cursor(query["cursor"]), limit=query["limit"])
    return {"reports": [report_view(r, with_errors=False) for r in page.rows],
            "next_cursor": encode_cursor(page.next_after)}


@blp.route("/settlement-runs", methods=["GET"])
@requires("reader")
@blp.arguments(RunListQuery, location="query")
@blp.response(200, RunPageOut)
@blp.doc(tags=["runs"])
def list_runs(query):
    """The tenant's settlement runs, newest first (totals and progress are on
    GET /v1/settlement-runs/{id})."""
    page = lists.runs_page(db(), current().tenant_id, status=query["status"],
                           after=decode_cursor(query["cursor"]), limit=query["limit"])
    return {"runs": page.rows, "next_cursor": encode_cursor(page.next_after)}


@blp.route("/retailers", methods=["GET"])
@requires("reader")
@blp.arguments(PageQuery, location="query")
@blp.response(200, RetailerPageOut)
@blp.doc(tags=["catalog"])
def list_retailers(query):
    tenant_id = current().tenant_id
    after = decode_name_cursor(query["cursor"],
                               lambda slug: lists.retailer_id_of(db(), tenant_id, slug))
    page = lists.retailers_page(db(), tenant_id, after=after, limit=query["limit"])
    ids = lists.network_ids_of_many(db(), tenant_id, [r.id for r in page.rows])
    return {"retailers": [{"slug": r.slug, "name": r.name, "category": r.category,
                           "network_ids": ids[r.id]} for r in page.rows],
            "next_cursor": encode_name_cursor(page, lambda r: r.slug)}


@blp.route("/share-rules", methods=["GET"])
@requires("reader")
@blp.arguments(ShareRuleListQuery, location="query")
@blp.response(200, ShareRulePageOut)
@blp.doc(tags=["catalog"])
def list_share_rules(query):
    """Share rules in the order they were made; `retailer`: that retailer's own rules (not
    the category-wide ones that may also apply to it); `active_on`: in force that day."""
    tenant_id = current().tenant_id
    retailer_id = None
    if query["retailer"] is not None:
        retailer_id = lists.retailer_id_of(db(), tenant_id, query["retailer"])
        if retailer_id is None:
            raise Problem(422, "Unknown retailer", f"no retailer {query['retailer']}",
                          [{"line": None, "field": "retailer", "code": "unknown_retailer",
                            "message": f"no retailer with slug {query['retailer']}"}])
    page = lists.share_rules_page(db(), tenant_id, retailer_id=retailer_id,
                                  active_on=query["active_on"],
                                  after=decode_cursor(query["cursor"]), limit=query["limit"])
    slugs = lists.retailer_slugs(db(), tenant_id,
                                 {r.retailer_id for r in page.rows if r.retailer_id})
    digits = tenant_policy().minor_digits
    return {"share_rules": [_rule_view(r, slugs, digits) for r in page.rows],
            "next_cursor": encode_cursor(page.next_after)}


def _rule_view(rule, slugs: dict[int, str], digits: int) -> dict:
    return {"id": rule.number, "retailer": slugs.get(rule.retailer_id), "category": rule.category,
            "kind": rule.kind,
            "rate": None if rule.rate_ppm is None else format_rate_ppm(rule.rate_ppm),
            "amount": None if rule.amount is None else format_amount(rule.amount, digits),
            "valid_from": rule.valid_from, "valid_to": rule.valid_to,
            "priority": rule.priority, "category_only": rule.category_only,
            "description": rule.description}


@blp.route("/members", methods=["GET"])
@requires("reader")
@blp.arguments(MemberListQuery, location="query")
@blp.response(200, MemberPageOut)
@blp.doc(tags=["catalog"])
def list_members(query):
    """Members in the order they joined the portal's records; `q`: external ids starting
    with it."""
    tenant_id = current().tenant_id
    after = decode_name_cursor(query["cursor"], lambda external_id: getattr(
        member_by_external_id(db(), tenant_id, external_id), "id", None))
    page = lists.members_page(db(), tenant_id, prefix=query["q"], after=after,
                              limit=query["limit"])
    return {"members": page.rows,
            "next_cursor": encode_name_cursor(page, lambda m: m.external_id)}
