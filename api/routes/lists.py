"""Lists of a tenant's objects, a page at a time: reports, settlement runs, retailers,
share rules, members (settlement/lists.py). Each answers `{<objects>: [...], next_cursor}`;
pass `next_cursor` back as `cursor` for the next page (null: the last page)."""
from __future__ import annotations

from flask_smorest import Blueprint

from api.auth import current, requires
from api.database import db
from api.errors import Problem
from api.paging import decode_name_cursor, decode_number_cursor, encode_cursor, next_name_cursor
from api.routes.reports import report_view
from api.schemas.common import PageQuery
from api.schemas.lists import (MemberListQuery, MemberPageOut, ReportListQuery, ReportPageOut,
                               RetailerPageOut, RunListQuery, RunPageOut, ShareRuleListQuery,
                               ShareRulePageOut)
from api.tenancy import tenant_policy
from settlement import lists
from settlement.catalog.service import member_by_external_id
from settlement.money import format_amount, format_rate_ppm

blp = Blueprint("lists", __name__, description="Lists of a tenant's objects, cursor-paginated")


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
                              after=decode_number_cursor(query["cursor"]), limit=query["limit"])
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
                           after=decode_number_cursor(query["cursor"]), limit=query["limit"])
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
            "next_cursor": next_name_cursor(page, lambda r: r.slug)}


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
                                  after=decode_number_cursor(query["cursor"]), limit=query["limit"])
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
            "next_cursor": next_name_cursor(page, lambda m: m.external_id)}
