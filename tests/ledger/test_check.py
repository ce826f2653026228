"""The "no cent lost" check (settle ledger check, the check_ledger job, GET
/v1/health/ledger), on both databases: a healthy ledger after ingestion and a paid run
passes; a member credited without a commission, an entry that does not balance and
accounts that do not sum to zero are each found, logged as an error and shown."""
from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from settlement.config import Settings
from settlement.ledger.check import check_ledger, last_check
from tests.conftest import generic_csv
from tests.domain.helpers import ingest
from tests.runs.test_report_frozen import NOV, at, pay, sale, us  # noqa: F401  (fixture)
from workers.queue import enqueue


def settle(db_url, monkeypatch, *args: str):
    from cli import main
    from settlement.config import get_settings

    monkeypatch.setenv("SETTLE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        get_settings.cache_clear()


def run_job(db_url, slug: str) -> dict:
    return enqueue("check_ledger", slug, settings=Settings(database_url=db_url, redis_url=None))


@pytest.fixture
def paid(engine, us, tmp_path):  # noqa: F811
    """Confirmed, pending and reversed commissions, and a paid run."""
    ingest(engine, us, generic_csv(sale("T-1", "M1", "100.00"), sale("T-2", "M2", "80.00"),
                                   sale("T-3", "M2", "50.00", "pending"),
                                   sale("T-4", "M1", "40.00")), as_of=at("2026-11-10"))
    ingest(engine, us, generic_csv(sale("T-4", "M1", "40.00", "reversed")),
           as_of=at("2026-11-12"))
    pay(engine, us, NOV, tmp_path)
    return us


def credit_without_commission(engine, tenant, external_id: str, amount: int,
                              balanced: bool = True) -> None:
    """A rogue entry: the member's available balance grows with nothing behind it."""
    with Session(engine) as session:
        member_id, = session.execute(text(
            "SELECT id FROM members WHERE tenant_id = :t AND external_id = :e"),
            {"t": tenant.id, "e": external_id}).one()
        entry_id = session.execute(text(
            "INSERT INTO journal_entries (tenant_id, idempotency_key, kind, memo) "
            "VALUES (:t, 'rogue', 'rogue', 'no commission') RETURNING id"),
            {"t": tenant.id}).scalar_one()
        session.execute(text(
            "INSERT INTO postings (tenant_id, entry_id, account, member_id, currency, amount) "
            "VALUES (:t, :e, 'available', :m, 'USD', :a), "
            "(:t, :e, 'network_receivable', NULL, 'USD', :b)"),
            {"t": tenant.id, "e": entry_id, "m": member_id, "a": amount,
             "b": -amount if balanced else 0})
        session.commit()


def test_a_healthy_ledger_passes_the_check_and_the_health_route_says_so(
        engine, db_url, paid, monkeypatch, client):
    with Session(engine) as session:
        assert check_ledger(session, paid.id).ok
    result = settle(db_url, monkeypatch, "ledger", "check", "--tenant", paid.slug)
    assert (result.exit_code, result.output) == (0, f"{paid.slug}: ok\n")
    shown = client.get("/v1/health/ledger", headers=paid.auth("admin"))
    assert shown.status_code == 200
    assert (shown.get_json()["ok"], shown.get_json()["member_mismatch_count"]) == (True, 0)
    assert client.get("/v1/health/ledger", headers=paid.auth("operator")).status_code == 403


def test_a_member_credited_without_a_commission_is_found_logged_and_shown(
        engine, db_url, paid, monkeypatch, client):
    credit_without_commission(engine, paid, "M2", 700)
    with capture_logs() as logs:
        outcome = run_job(db_url, paid.slug)
    assert outcome == {"checked": 1, "failed": [paid.id]}
    assert [(e["log_level"], e["tenant_id"], e["member_mismatches"]) for e in logs
            if e["event"] == "ledger.mismatch"] == [("error", paid.id, 1)]
    shown = client.get("/v1/health/ledger", headers=paid.auth("admin")).get_json()
    assert shown["ok"] is False
    assert shown["member_mismatches"] == [{"member": "M2", "total": [1300 + 700, 1300],
                                           "pending": [500, 500], "paid": [800, 800]}]
    assert shown["unbalanced_entries"] == [] and shown["tenant_totals"] == {}
    result = settle(db_url, monkeypatch, "ledger", "check", "--tenant", paid.slug)
    assert result.exit_code == 1 and "MISMATCH" in result.output


def test_an_entry_that_does_not_balance_is_found_with_the_accounts(engine, db_url, paid,
                                                                   request):
    if request.node.callspec.params["db_url"] == "postgres":
        pytest.skip("PostgreSQL's ledger trigger refuses the entry at commit")
    credit_without_commission(engine, paid, "M1", 300, balanced=False)
    with Session(engine) as session:
        result = check_ledger(session, paid.id)
    assert [(e["currency"], e["sum"]) for e in result.unbalanced_entries] == [("USD", 300)]
    assert sum(result.tenant_totals.values()) == 300
    assert result.member_mismatch_count == 1


def test_the_check_run_twice_at_once_records_two_passing_checks(engine, db_url, paid):
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(run_job(db_url, paid.slug)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [{"checked": 1, "failed": []}] * 2
    with Session(engine) as session:
        checks = session.execute(text(
            "SELECT count(*) FROM audit_log WHERE tenant_id = :t AND action = 'ledger.checked'"),
            {"t": paid.id}).scalar_one()
        assert checks == 2 and last_check(session, paid.id)["ok"] is True
