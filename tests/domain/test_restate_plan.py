"""A report restating commissions we have reads those commissions by key, whatever the
planner's statistics say (settlement/commissions/corrections.py, restate_existing).

Under load the statement that writes a report's `updated` lines over their commissions was
planned from statistics taken before the tenant had any: the planner expected one row for
the tenant, looped over all of them and scanned the report's lines inside the loop (53 s
for one report). Here the statistics are taken while the tenant is empty, the tenant then
gets 3,000 commissions, and a report restates 20 of them; PostgreSQL's own executor counts
(auto_explain's EXPLAIN ANALYZE of every statement, sent back as notices) must show the
restating statement reading a number of rows in proportion to the 20 lines, not to the
tenant's 3,000 commissions."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import event, text

from settlement.db import make_engine
from tests.conftest import generic_csv
from tests.domain.helpers import add_members, add_retailer, add_rule, balances, ingest

pytestmark = pytest.mark.postgres
T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc)
COMMISSIONS, RESTATED, UNCHANGED = 3000, 20, 400


def explaining_engine(url: str, plans: list[dict]):
    """An engine whose every statement's executed plan (rows and loops per node) lands in
    `plans`: auto_explain loaded per connection, logging at NOTICE level to the client."""
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _explain(dbapi_connection, _record):
        def keep(diagnostic) -> None:
            message = diagnostic.message_primary or ""
            if message.startswith("duration:") and "{" in message:
                plans.append(json.loads(message[message.index("{"):]))
        dbapi_connection.add_notice_handler(keep)
        with dbapi_connection.cursor() as cursor:
            cursor.execute("LOAD 'auto_explain'")
            cursor.execute("SET auto_explain.log_min_duration = 0")
            cursor.execute("SET auto_explain.log_analyze = on")
            cursor.execute("SET auto_explain.log_format = 'json'")
            cursor.execute("SET auto_explain.log_level = 'notice'")
        dbapi_connection.commit()
    return engine


def rows_read(node: dict) -> int:
    """Rows every node of a plan produced or threw away, over all its loops."""
    loops = node.get("Actual Loops", 1)
    own = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
           + node.get("Rows Removed by Join Filter", 0)) * loops
    return own + sum(rows_read(child) for child in node.get("Plans", []))


def line(n: int, status: str) -> str:
    return f"t{n},o{n},m1,macys,,2026-10-01,100.00,8.00,USD,{status}"


def tenant_unknown_to_the_statistics(engine, make_tenant):
    """A tenant with COMMISSIONS pending commissions of m1, all arrived after the last
    ANALYZE of `commissions` (which saw none of them)."""
    tenant = make_tenant()
    add_retailer(engine, tenant, "macys")
    add_rule(engine, tenant, retailer="macys", kind="percent_of_sale", rate="6")
    add_members(engine, tenant, "m1")
    with engine.begin() as conn:
        conn.execute(text("ANALYZE commissions"))
    ingest(engine, tenant, generic_csv(*(line(n, "pending") for n in range(COMMISSIONS))),
           as_of=T0)
    return tenant


def commission_updates(plans: list[dict]) -> list[dict]:
    return [p for p in plans if p["Query Text"].lstrip().startswith("UPDATE commissions")]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_report_of_new_lines_only_runs_no_restating_statement_on_a_tenant_unknown_to_stats(
        db_url, engine, make_tenant):
    tenant = tenant_unknown_to_the_statistics(engine, make_tenant)
    plans: list[dict] = []
    fresh = [line(n, "pending") for n in range(COMMISSIONS, COMMISSIONS + 2000)]
    report = ingest(explaining_engine(db_url, plans), tenant, generic_csv(*fresh),
                    as_of=T0 + dt.timedelta(days=1))

    assert (report.status, report.inserted, report.updated) == ("completed", 2000, 0)
    updates = commission_updates(plans)
    assert sum(rows_read(p["Plan"]) for p in updates) == 0, \
        [json.dumps(p["Plan"])[:2000] for p in updates]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_restating_lines_reads_the_tenants_commissions_at_most_once_with_stale_statistics(
        db_url, engine, make_tenant):
    tenant = tenant_unknown_to_the_statistics(engine, make_tenant)
    plans: list[dict] = []
    restating = [line(n, "confirmed") for n in range(RESTATED)] + \
                [line(n, "pending") for n in range(RESTATED, RESTATED + UNCHANGED)]
    report = ingest(explaining_engine(db_url, plans), tenant, generic_csv(*restating),
                    as_of=T0 + dt.timedelta(days=1))

    assert (report.status, report.updated, report.unchanged) == ("completed", RESTATED, UNCHANGED)
    assert balances(engine, tenant, "m1")["available"] == RESTATED * 600
    updates = commission_updates(plans)
    assert len(updates) == 2, [p["Query Text"][:60] for p in plans]
    for plan in updates:
        assert rows_read(plan["Plan"]) <= COMMISSIONS + 10 * (RESTATED + UNCHANGED), \
            json.dumps(plan["Plan"])[:3000]
