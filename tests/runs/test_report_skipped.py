"""`settle run show --skipped`: the members a plan skipped, one line each with the reason
and the amount left in the balance, on both databases."""
from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy.orm import Session

from settlement.catalog.service import MemberBatch, check_member, upsert_members
from settlement.runs import plan as runs
from tests.conftest import generic_csv
from tests.domain.helpers import ingest
from tests.runs.test_report_frozen import NOV, at, sale, us  # noqa: F401  (fixture)


def settle(db_url, monkeypatch, *args: str):
    from cli import main
    from settlement.config import get_settings

    monkeypatch.setenv("SETTLE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        get_settings.cache_clear()


def test_run_show_skipped_lists_each_skipped_member_with_reason_and_amount(
        engine, db_url, us, monkeypatch):  # noqa: F811
    with Session(engine) as session:
        batch = MemberBatch()
        check_member(1, {"external_id": "M3", "payout_method": "paypal", "name": "No Mail"},
                     batch, NOV)
        upsert_members(session, us.id, "USD", batch, "test")
        session.commit()
    ingest(engine, us, generic_csv(sale("T-1", "M1", "30.00"), sale("T-2", "M2", "100.00"),
                                   sale("T-3", "M3", "100.00")), as_of=at("2026-11-10"))
    with Session(engine) as session:
        run_id = runs.plan_run(session, us.id, NOV, "key:1").number  # what `settle` takes
        session.commit()
    result = settle(db_url, monkeypatch, "run", "show", "--tenant", us.slug, "--skipped",
                    str(run_id))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["member\treason\tamount",
                                          "M1\tbelow_minimum\t3.00",
                                          "M3\tno_mailing_address\t10.00"]
    only = settle(db_url, monkeypatch, "run", "show", "--tenant", us.slug, "--skipped",
                  "--reason", "below_minimum", str(run_id))
    assert only.output.splitlines()[1:] == ["M1\tbelow_minimum\t3.00"]
    missing = settle(db_url, monkeypatch, "run", "show", "--tenant", us.slug, "--skipped",
                     str(run_id + 1000))
    assert missing.exit_code != 0 and "not_found" in missing.output
