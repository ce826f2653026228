"""Liveness, readiness, and the ledger's last check."""
from __future__ import annotations

from marshmallow import Schema, fields


class HealthOut(Schema):
    status = fields.String(metadata={"example": "ok"})


class ReadyOut(Schema):
    status = fields.String(metadata={"example": "ready"})
    checks = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "database, migrations, redis: ok, not used, or why not"})


class MemberMismatchOut(Schema):
    member = fields.String()
    total = fields.List(fields.Integer(), metadata={
        "description": "[from postings, expected] in minor units"})
    pending = fields.List(fields.Integer())
    paid = fields.List(fields.Integer())


class LedgerHealthOut(Schema):
    checked_at = fields.String(allow_none=True, metadata={
        "description": "when the last check ran (null: never yet)"})
    ok = fields.Boolean(allow_none=True)
    unbalanced_entries = fields.List(fields.Dict())
    tenant_totals = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "the accounts' balances, when they do not sum to zero"})
    member_mismatches = fields.List(fields.Nested(MemberMismatchOut))
    member_mismatch_count = fields.Integer()
