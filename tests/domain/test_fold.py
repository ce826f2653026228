"""On PostgreSQL a report's plain new lines are classified and written by one statement
(`insert_new_lines`), the rest through `applied`. Both ways must write the same rows: the
same story is told to two tenants, one with every report folded and one with none, and
everything a member, an operator or the ledger can see is compared."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.access.service import create_key
from settlement.commissions import lifecycle
from settlement.db import engine_for
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import apply_policy
from tests.conftest import TenantHandle, generic_csv, policy_document
from tests.domain.helpers import add_members, add_retailer, add_rule, ingest, ledger_problems

T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc)

STORY = [
    # New lines of every kind: pending, confirmed, an unknown member, an unknown retailer,
    # an id sent twice, a line first seen reversed, a line of no money.
    (T0, ["t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending",
          "t2,o2,m2,macys,shoes,2026-10-02,50.00,4.00,USD,confirmed",
          "t3,o3,m9,macys,,2026-10-03,20.00,2.00,USD,pending",
          "t4,o4,m1,nope,,2026-10-03,20.00,2.00,USD,pending",
          "t5,o5,m1,macys,,2026-10-04,10.00,1.00,USD,pending",
          "t5,o5,m1,macys,,2026-10-04,10.00,1.00,USD,pending",
          "t6,o6,m1,macys,,2026-10-05,30.00,3.00,USD,reversed",
          "t7,o7,m2,macys,,2026-10-05,0.00,0.00,USD,pending"]),
    # Mostly new lines with a few we have: confirmed, unchanged, reversed after being paid
    # into available, a reinstatement refused.
    (T0 + dt.timedelta(days=1),
     ["t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,confirmed",
      "t2,o2,m2,macys,shoes,2026-10-02,50.00,4.00,USD,confirmed",
      "t6,o6,m1,macys,,2026-10-05,30.00,3.00,USD,pending",
      "t8,o8,m1,macys,,2026-10-06,40.00,4.00,USD,pending",
      "t9,o9,m2,macys,,2026-10-06,60.00,6.00,USD,pending",
      "t10,o10,m9,macys,,2026-10-06,70.00,7.00,USD,confirmed",
      "t11,o11,m1,macys,shoes,2026-10-07,80.00,8.00,USD,pending",
      "t12,o12,m2,macys,,2026-10-07,90.00,9.00,USD,pending"]),
    # Only a line first seen reversed: its effects are nil, so no entry at all.
    (T0 + dt.timedelta(days=2), ["t13,o13,m1,macys,,2026-10-08,30.00,3.00,USD,reversed"]),
    # Older than what we have: stale; and a reversal of a confirmed line (a claw-back).
    (T0 + dt.timedelta(hours=12), ["t1,o1,m1,macys,,2026-10-01,100.00,8.00,USD,pending"]),
    (T0 + dt.timedelta(days=3), ["t2,o2,m2,macys,shoes,2026-10-02,50.00,4.00,USD,reversed",
                                 "t14,o14,m2,macys,,2026-10-09,15.00,1.50,USD,pending"]),
]


@pytest.fixture
def pg_engine(pg_url):
    return engine_for(pg_url)


def _tenant(engine) -> TenantHandle:
    slug = f"t-{uuid.uuid4().hex[:10]}"
    policy = TenantPolicy.model_validate(policy_document(slug, "USD"))
    with Session(engine) as session:
        tenant, _ = apply_policy(session, policy)
        keys = {"uploader": create_key(session, tenant.id, "uploader")}
        session.commit()
        return TenantHandle(tenant.id, slug, "USD", keys)


def _tell(engine, monkeypatch, fold: bool) -> tuple[TenantHandle, list]:
    tenant = _tenant(engine)
    add_retailer(engine, tenant, "macys")
    add_rule(engine, tenant, retailer="macys", kind="percent_of_sale", rate="6")
    add_rule(engine, tenant, retailer="macys", category="shoes", kind="fixed", rate=None,
             amount="1.25", priority=1)
    add_members(engine, tenant, "m1", "m2")
    decided = []

    def forced(session, ctx):
        decided.append(lifecycle.is_postgres(session) and not ctx.whole_or_nothing)
        return fold
    monkeypatch.setattr(lifecycle, "fold_new_lines", forced)
    reports = [ingest(engine, tenant, generic_csv(*lines), as_of=as_of)
               for as_of, lines in STORY]
    assert all(decided)  # the folded tenant really was folded
    return tenant, [(r.status, r.lines, r.inserted, r.updated, r.unchanged, r.stale,
                     r.rejected, r.unattributed, r.entry_id is None) for r in reports]


def _seen(engine, tenant) -> dict:
    p = {"t": tenant.id}
    with Session(engine) as session:
        rows = lambda sql: session.execute(text(sql), p).all()  # noqa: E731
        return {
            "commissions": rows("""
              SELECT c.transaction_id, c.order_id, c.member_external_id, m.external_id,
                     c.status, c.sale_amount, c.commission_amount, c.sale_precise,
                     c.commission_precise, c.share_amount, c.margin_amount, c.confirmed_on,
                     c.awaiting_original, c.version, c.line, c.entry_id IS NULL,
                     r.number AS rule
              FROM commissions c LEFT JOIN members m ON m.tenant_id = c.tenant_id
                AND m.id = c.member_id
              LEFT JOIN share_rules r ON r.tenant_id = c.tenant_id AND r.id = c.rule_id
              WHERE c.tenant_id = :t ORDER BY c.transaction_id"""),
            "balances": rows("""
              SELECT p.account, m.external_id, sum(p.amount) FROM postings p
              LEFT JOIN members m ON m.tenant_id = p.tenant_id AND m.id = p.member_id
              WHERE p.tenant_id = :t GROUP BY p.account, m.external_id
              ORDER BY p.account, m.external_id"""),
            "entries": rows("SELECT kind, memo FROM journal_entries WHERE tenant_id = :t "
                            "ORDER BY id"),
            "errors": rows("""
              SELECT r.number, e.seq, e.line, e.field, e.code, e.message FROM report_errors e
              JOIN reports r ON r.tenant_id = e.tenant_id AND r.id = e.report_id
              WHERE e.tenant_id = :t ORDER BY r.number, e.seq"""),
            "events": rows("""
              SELECT c.transaction_id, e.kind, e.line, e.old_status, e.new_status,
                     e.old_share, e.new_share FROM commission_events e
              JOIN commissions c ON c.tenant_id = e.tenant_id AND c.id = e.commission_id
              WHERE e.tenant_id = :t ORDER BY c.transaction_id, e.id"""),
        }


def test_folded_and_classified_reports_write_the_same_rows(pg_engine, monkeypatch):
    folded, folded_reports = _tell(pg_engine, monkeypatch, fold=True)
    whole, whole_reports = _tell(pg_engine, monkeypatch, fold=False)
    assert folded_reports == whole_reports
    assert _seen(pg_engine, folded) == _seen(pg_engine, whole)
    assert ledger_problems(pg_engine, folded) == []
    # The story reached every branch it is there for.
    statuses = [r[0] for r in folded_reports]
    assert statuses == ["completed"] * len(STORY)
    assert folded_reports[2][-1]  # the report of one reversed new line made no entry
    assert folded_reports[3][5] == 1  # stale
    assert sum(r[6] for r in folded_reports) >= 4  # refusals: unknown retailer, twice t5, t6


def test_folded_new_lines_of_no_money_point_at_no_entry(pg_engine, monkeypatch):
    tenant, reports = _tell(pg_engine, monkeypatch, fold=True)
    with Session(pg_engine) as session:
        entry = session.execute(text(
            "SELECT entry_id FROM commissions WHERE tenant_id = :t AND transaction_id = 't13'"),
            {"t": tenant.id}).scalar_one()
        report_entries = session.execute(text(
            "SELECT count(*) FROM journal_entries WHERE tenant_id = :t AND kind = 'report'"),
            {"t": tenant.id}).scalar_one()
    assert entry is None
    assert report_entries == sum(1 for r in reports if not r[-1])


def _decide(engine, tenant, lines: int, whole: bool = False) -> bool:
    from settlement.reports.staging import create_incoming
    from settlement.sql import analyze_table
    ctx = lifecycle.ApplyContext(tenant_id=tenant.id, report_id=0, fmt="generic",
                                 source="generic", currency="USD", rounding="half_up",
                                 as_of_us=0, today=dt.date(2026, 11, 1), whole_or_nothing=whole)
    with Session(engine) as session:
        create_incoming(session)
        session.execute(text(
            "INSERT INTO incoming (line, transaction_id) SELECT g, 'x' || g "
            "FROM generate_series(1, :n) g"), {"n": lines})
        analyze_table(session, "incoming")
        decided = lifecycle.fold_new_lines(session, ctx)
        session.rollback()
    return decided


def test_only_large_reports_of_new_lines_that_refuse_line_by_line_are_folded(pg_engine):
    tenant = _tenant(pg_engine)
    assert _decide(pg_engine, tenant, lifecycle.FOLD_MIN_LINES)
    assert not _decide(pg_engine, tenant, lifecycle.FOLD_MIN_LINES - 1)
    assert not _decide(pg_engine, tenant, lifecycle.FOLD_MIN_LINES, whole=True)
