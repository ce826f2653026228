"""Pages of a tenant's objects: the filters of each list and the page it answers."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.catalog import RetailerOut, ShareRuleOut
from api.schemas.common import PageQuery
from api.schemas.reports import ReportOut
from settlement.reports.formats import FORMATS
from settlement.states import ReportStatus, RunStatus


REPORT_STATUSES = tuple(ReportStatus)


RUN_STATUSES = tuple(RunStatus)


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
