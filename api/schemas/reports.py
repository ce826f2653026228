"""Commission reports: the upload's query, and the report with its counts and line errors."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates


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
