"""Bank transfers that come back after their date: the bank's return notice fails the
exchange and a compensating entry returns the points, the delivered entry untouched, once
however often the notice is read; a notice that does not match our transfers is refused
whole (both databases)."""
from __future__ import annotations

import datetime as dt
import shutil

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.exchanges import zengin
from settlement.exchanges.fulfil import fulfil_exchanges
from settlement.exchanges.returns import FILED, take_return_notices
from settlement.ledger.service import unbalanced_entries
from sandboxes.partners import return_transfers
from tests.exchanges.conftest import BANK, buckets, earn
from tests.exchanges.test_fulfil import TODAY, amazon, ask, partners, state  # noqa: F401

DATE = dt.date(2026, 11, 25)  # Thursday 19 + 3 business days (Monday 23 a holiday)
RETURNED_ON = dt.date(2026, 11, 27)
CUSTOMER_CODE = slice(91, 101)  # customer code 1 in a data record


def delivered_transfers(engine, tenant, partners, *values: int):
    """Bank exchanges of `values` yen, one member each, transferred and delivered."""
    made = []
    for n, value in enumerate(values, start=1):
        mid = earn(engine, tenant, f"M{n}", 5000)
        made.append((mid, ask(engine, tenant, mid, {"exit": "bank", "value": value,
                                                    "destination": BANK})))
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    fulfil_exchanges(engine, tenant.id, partners, DATE)
    assert {state(engine, tenant, e.id).status for _, e in made} == {"delivered"}
    return made


def entry_kinds(engine, tenant, exchange_id: int) -> list[str]:
    with Session(engine) as session:
        return session.execute(text(
            "SELECT kind FROM journal_entries WHERE tenant_id = :t AND idempotency_key "
            "LIKE :k ORDER BY id"), {"t": tenant.id, "k": f"exchange:{exchange_id}:%"}
        ).scalars().all()


def test_a_transfer_returned_after_delivery_fails_and_a_compensating_entry_returns_the_points(
        engine, points_tenant, partners, tmp_path):
    tenant = points_tenant()
    (mid, returned), (other, kept) = delivered_transfers(engine, tenant, partners, 3000, 1000)
    assert buckets(engine, tenant, mid)["exchanged"] == 3000
    notice = return_transfers(next(tmp_path.rglob("zengin-*.txt")), {returned.id: "2"},
                              RETURNED_ON)
    states = fulfil_exchanges(engine, tenant.id, partners, RETURNED_ON)
    assert states["bank_returns"] == 1
    done = state(engine, tenant, returned.id)
    assert (done.status, done.provider_status) == ("failed", "RETURNED")
    assert "11-27" in done.failure_reason and "name differs" in done.failure_reason
    assert {k: buckets(engine, tenant, mid)[k] for k in ("available", "reserved",
                                                         "exchanged")} == {
        "available": 5000, "reserved": 0, "exchanged": 0}
    # The delivered entry stands; a new one undoes it.
    assert entry_kinds(engine, tenant, returned.id) == [
        "exchange_reserve", "exchange_delivered", "exchange_returned"]
    assert state(engine, tenant, kept.id).status == "delivered"
    assert buckets(engine, tenant, other)["exchanged"] == 1000
    assert not notice.exists() and (notice.parent / FILED / notice.name).exists()
    with Session(engine) as session:
        assert unbalanced_entries(session, tenant.id) == []


def test_the_same_return_notice_read_twice_changes_nothing_the_second_time(
        engine, points_tenant, partners, tmp_path):
    tenant = points_tenant()
    [(mid, returned)] = delivered_transfers(engine, tenant, partners, 2000)
    notice = return_transfers(next(tmp_path.rglob("zengin-*.txt")), {returned.id: "3"},
                              RETURNED_ON)
    folder = notice.parent
    first = take_return_notices(engine, tenant.id, folder)
    after_first = (buckets(engine, tenant, mid), entry_kinds(engine, tenant, returned.id))
    shutil.copy(folder / FILED / notice.name, notice)  # the bank sends it again
    second = take_return_notices(engine, tenant.id, folder)
    assert (first["after_delivery"], second["after_delivery"], second["already"]) == (1, 0, 1)
    assert (buckets(engine, tenant, mid), entry_kinds(engine, tenant, returned.id)) == \
        after_first


@pytest.mark.parametrize("tamper, where", [
    (lambda rec: rec[:91] + b"0000999999" + rec[101:], "line 2, customer_code1"),
    (lambda rec: rec[:80] + b"0000009999" + rec[90:], "line 2, amount"),
    (lambda rec: rec[:113] + b"7" + rec[114:], "line 2, result_code"),
], ids=["a-stranger", "another-amount", "unknown-result-code"])
def test_a_return_notice_that_does_not_match_our_transfers_is_refused_whole(
        engine, points_tenant, partners, tmp_path, tamper, where):
    tenant = points_tenant()
    (first_mid, first), (_, second) = delivered_transfers(engine, tenant, partners, 2000, 1500)
    notice = return_transfers(next(tmp_path.rglob("zengin-*.txt")),
                              {first.id: "1", second.id: "1"}, RETURNED_ON)
    lines = notice.read_bytes().split(b"\r\n")
    lines[1] = tamper(lines[1])
    if where.endswith("amount"):  # keep the trailer's total in step: only the amount lies
        total = sum(int(zengin.parse_record(r)["amount"]) for r in lines[1:3])
        lines[3] = lines[3][:7] + str(total).zfill(12).encode() + lines[3][19:]
    notice.write_bytes(b"\r\n".join(lines))
    states = fulfil_exchanges(engine, tenant.id, partners, RETURNED_ON)
    assert states["bank_notices_refused"] == 1
    refused = notice.with_name(notice.name + ".refused").read_text()
    assert where in refused
    # Nothing of it applied: the valid line 3 too.
    assert {state(engine, tenant, e.id).status for e in (first, second)} == {"delivered"}
    assert buckets(engine, tenant, first_mid)["exchanged"] == 2000


def test_a_notice_naming_another_sites_transfer_is_refused(engine, points_tenant, partners,
                                                           tmp_path):
    ours, theirs = points_tenant(), points_tenant()
    [(_, mine)] = delivered_transfers(engine, ours, partners, 2000)
    their_mid = earn(engine, theirs, "T1", 5000)
    their = ask(engine, theirs, their_mid, {"exit": "bank", "value": 2000,
                                            "destination": BANK})
    fulfil_exchanges(engine, theirs.id, partners, TODAY)
    fulfil_exchanges(engine, theirs.id, partners, DATE)
    their_file = next(p for p in tmp_path.rglob("zengin-*.txt") if theirs.slug in str(p))
    our_folder = next(p for p in tmp_path.rglob("zengin-*.txt") if ours.slug in str(p)).parent
    notice = return_transfers(their_file, {their.id: "1"}, RETURNED_ON)
    shutil.move(notice, our_folder / notice.name)  # delivered to the wrong site
    fulfil_exchanges(engine, ours.id, partners, RETURNED_ON)
    assert "customer_code1" in (our_folder / (notice.name + ".refused")).read_text()
    assert state(engine, theirs, their.id).status == "delivered"
    assert state(engine, ours, mine.id).status == "delivered"


@pytest.mark.parametrize("raw, where", [
    (b"1" + b"2" * 119 + b"\r\n", "line 1, kind"),
    (b"no crlf", "record"),
], ids=["no-data-records", "no-crlf"])
def test_a_malformed_notice_names_its_line_and_field(raw, where):
    with pytest.raises(zengin.NoticeError, match=where):
        zengin.read_return_notice(raw)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_jobs_taking_the_same_notice_at_once_return_the_points_once(
        engine, points_tenant, partners, tmp_path):
    import threading
    from concurrent.futures import ThreadPoolExecutor
    tenant = points_tenant()
    made = delivered_transfers(engine, tenant, partners, 1000, 1200, 1400, 1600)
    notice = return_transfers(next(tmp_path.rglob("zengin-*.txt")),
                              {e.id: "3" for _, e in made}, RETURNED_ON)
    barrier = threading.Barrier(2, timeout=120)

    def job():
        barrier.wait(timeout=30)
        return take_return_notices(engine, tenant.id, notice.parent)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: job(), range(2)))
    assert sum(r["after_delivery"] for r in results) == 4
    for mid, exchange in made:
        assert entry_kinds(engine, tenant, exchange.id).count("exchange_returned") == 1
        assert buckets(engine, tenant, mid)["available"] == 5000
    assert (notice.parent / FILED / notice.name).exists() and not notice.exists()


def test_a_notice_for_an_exit_the_site_has_since_removed_is_refused_not_a_crash(
        engine, points_tenant, partners, tmp_path):
    from settlement.tenants.policy import TenantPolicy
    from settlement.tenants.service import apply_policy
    from tests.conftest import policy_document
    from tests.exchanges.conftest import EXITS
    tenant = points_tenant()
    [(_, sent)] = delivered_transfers(engine, tenant, partners, 2000)
    without_bank = {name: doc for name, doc in EXITS.items() if name != "bank"}
    with Session(engine) as session:
        apply_policy(session, TenantPolicy.model_validate(policy_document(
            tenant.slug, "JPY", exits=without_bank,
            points={"expiry": {"rule": "inactivity", "days": 180}})))
        session.commit()
    notice = return_transfers(next(tmp_path.rglob("zengin-*.txt")), {sent.id: "1"},
                              RETURNED_ON)
    states = fulfil_exchanges(engine, tenant.id, partners, RETURNED_ON)
    assert states["bank_notices_refused"] == 1
    assert "no longer a bank exit" in notice.with_name(notice.name + ".refused").read_text()
    assert state(engine, tenant, sent.id).status == "delivered"
