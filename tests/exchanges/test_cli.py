"""`settle exchanges expire|fulfil`: the clock's exchange jobs by hand."""
from __future__ import annotations

import datetime as dt

from click.testing import CliRunner

from cli import main
from settlement.config import get_settings
from tests.exchanges.conftest import buckets, earn


def settle(db_url, monkeypatch, tmp_path, *args: str):
    monkeypatch.setenv("SETTLE_DATABASE_URL", db_url)
    monkeypatch.setenv("SETTLE_OUTBOX_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        get_settings.cache_clear()


def test_settle_exchanges_expire_at_a_date_expires_once(engine, db_url, points_tenant,
                                                         monkeypatch, tmp_path):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 900, on=dt.date(2026, 1, 5))
    result = settle(db_url, monkeypatch, tmp_path, "exchanges", "expire", "--tenant",
                    tenant.slug, "--date", "2026-07-04")
    assert result.exit_code == 0, result.output
    assert result.output == f"{tenant.slug}: 1 members' points expired\n"
    again = settle(db_url, monkeypatch, tmp_path, "exchanges", "expire", "--tenant",
                   tenant.slug, "--date", "2026-07-04")
    assert again.output == f"{tenant.slug}: 0 members' points expired\n"
    assert buckets(engine, tenant, mid)["breakage"] == 900


def test_settle_exchanges_refuses_a_bad_date(db_url, monkeypatch, tmp_path):
    result = settle(db_url, monkeypatch, tmp_path, "exchanges", "fulfil", "--date", "19/11")
    assert result.exit_code == 2 and "not a date" in result.output
