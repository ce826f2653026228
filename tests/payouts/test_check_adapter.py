"""CheckAdapter: check-print and positive-pay files, stable check numbers, per-item failures."""
from __future__ import annotations

import csv
import datetime as dt
import io
from types import SimpleNamespace

import pytest

from settlement.payouts.base import (
    FAILED, REFUSED, SUBMITTED, SUCCEEDED, UNKNOWN, Address, BatchContext, PayoutLine,
)
from settlement.payouts.check import (
    CHECK_COLUMNS, PLACEHOLDER_ACCOUNT, POSITIVE_PAY_COLUMNS, CheckAdapter,
)
from settlement.payouts.csvsafe import FileConflictError
from settlement.payouts.registry import UnknownMethodError, adapter_for

PAYOUT_DATE = dt.date(2026, 11, 15)


def address(name="Alice Smith", **changes):
    fields = dict(name=name, line1="12 Main St", line2="Apt 4", city="Springfield",
                  region="IL", postal_code="62701", country="US")
    fields.update(changes)
    return Address(**fields)


def line(item_id, amount=1250, addr="default", reference=None):
    return PayoutLine(item_id=item_id, reference=reference or f"r{item_id}",
                      member=f"m-{item_id}", amount=amount, currency="USD", digits=2,
                      points=None, destination=None,
                      address=address() if addr == "default" else addr)


def ctx(outbox, run_id=5, seq=1):
    return BatchContext(tenant="acme", run_id=run_id, payout_date=PAYOUT_DATE, method="check",
                        seq=seq, idempotency_key=f"acme-{run_id}-check-{seq}", outbox=outbox)


def rows(path):
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def test_submit_writes_the_check_file_and_the_positive_pay_file_with_the_documented_columns(
        tmp_path):
    adapter = CheckAdapter(account="123456789")
    c = ctx(tmp_path)
    result = adapter.submit(c, [line(101, 1250), line(102, 501)])
    checks = rows(tmp_path / "checks-acme-5-check-1.csv")
    assert checks[0] == list(CHECK_COLUMNS)
    assert checks[1] == ["101", "Alice Smith", "12 Main St", "Apt 4", "Springfield", "IL",
                         "62701", "US", "12.50", "USD", "Cashback payout r101", "2026-11-15"]
    assert checks[2][0] == "102" and checks[2][8] == "5.01"
    pay = rows(tmp_path / "positive-pay-acme-5-check-1.csv")
    assert pay == [list(POSITIVE_PAY_COLUMNS),
                   ["123456789", "101", "2026-11-15", "12.50", "Alice Smith"],
                   ["123456789", "102", "2026-11-15", "5.01", "Alice Smith"]]
    assert result.provider_batch_id == "checks-acme-5-check-1.csv"


def test_a_check_issued_is_a_payout_every_item_succeeded_with_its_check_number(tmp_path):
    result = CheckAdapter().submit(ctx(tmp_path), [line(7), line(8)])
    assert result.state == SUBMITTED and result.done is True and result.error is None
    assert [(o.item_id, o.status, o.provider_item_id, o.provider_status)
            for o in result.outcomes] == [(7, SUCCEEDED, "7", "ISSUED"),
                                          (8, SUCCEEDED, "8", "ISSUED")]


def test_formula_looking_payee_names_are_neutralised_while_amounts_stay_numbers(tmp_path):
    evil = address(name='=HYPERLINK("http://evil.example","Click")', line1="+1 Evil Rd",
                   city="@City")
    CheckAdapter(account="123").submit(ctx(tmp_path), [line(1, 1250, evil)])
    check = rows(tmp_path / "checks-acme-5-check-1.csv")[1]
    assert check[1] == "'" + evil.name and check[2] == "'+1 Evil Rd" and check[4] == "'@City"
    assert check[8] == "12.50"
    pay = rows(tmp_path / "positive-pay-acme-5-check-1.csv")[1]
    assert pay[4] == "'" + evil.name and pay[3] == "12.50"


def test_the_placeholder_account_is_used_until_one_is_configured(tmp_path):
    CheckAdapter().submit(ctx(tmp_path), [line(1)])
    assert rows(tmp_path / "positive-pay-acme-5-check-1.csv")[1][0] == PLACEHOLDER_ACCOUNT


def test_resubmitting_the_same_batch_writes_byte_identical_files_whatever_the_line_order(
        tmp_path):
    adapter = CheckAdapter(account="123")
    lines = [line(3), line(1), line(2, addr=None)]
    first = adapter.submit(ctx(tmp_path), lines)
    names = sorted(p.name for p in tmp_path.iterdir())
    snapshot = {n: (tmp_path / n).read_bytes() for n in names}
    second = adapter.submit(ctx(tmp_path), list(reversed(lines)))
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temp file left either
    assert {n: (tmp_path / n).read_bytes() for n in names} == snapshot
    assert [r[0] for r in rows(tmp_path / "checks-acme-5-check-1.csv")[1:]] == ["1", "3"]
    assert {(o.item_id, o.status) for o in first.outcomes} == \
        {(o.item_id, o.status) for o in second.outcomes}


def test_a_different_batch_under_the_same_key_never_replaces_the_printed_file(tmp_path):
    adapter = CheckAdapter()
    adapter.submit(ctx(tmp_path), [line(1, 1250)])
    with pytest.raises(FileConflictError):
        adapter.submit(ctx(tmp_path), [line(1, 9999)])
    assert rows(tmp_path / "checks-acme-5-check-1.csv")[1][8] == "12.50"


def test_check_numbers_are_stable_for_a_batch_and_unique_across_runs(tmp_path):
    adapter = CheckAdapter()
    run5 = [line(i) for i in (11, 12, 13)]
    run6 = [line(i) for i in (21, 22)]  # a later run's items: new item ids
    a = adapter.submit(ctx(tmp_path / "r5", run_id=5), run5)
    b = adapter.submit(ctx(tmp_path / "r6", run_id=6), run6)
    again = adapter.submit(ctx(tmp_path / "r5", run_id=5), run5)
    numbers_a = [o.provider_item_id for o in a.outcomes]
    numbers_b = [o.provider_item_id for o in b.outcomes]
    assert numbers_a == [o.provider_item_id for o in again.outcomes]
    assert len(set(numbers_a) | set(numbers_b)) == 5
    assert numbers_a == [adapter.check_number(ln) for ln in run5]


def test_check_numbers_follow_the_configured_offset_and_fit_ten_digits():
    assert CheckAdapter(number_offset=1_000_000).check_number(line(42)) == "1000042"
    with pytest.raises(ValueError):
        CheckAdapter(number_offset=9_999_999_999).check_number(line(1))
    with pytest.raises(ValueError):
        CheckAdapter(number_offset=-1)


def test_missing_address_fails_only_that_item(tmp_path):
    result = CheckAdapter().submit(ctx(tmp_path), [line(1), line(2, addr=None), line(3)])
    by_item = {o.item_id: o for o in result.outcomes}
    assert by_item[2].status == FAILED and by_item[2].reason == "no mailing address"
    assert by_item[1].status == SUCCEEDED and by_item[3].status == SUCCEEDED
    assert [r[0] for r in rows(tmp_path / "checks-acme-5-check-1.csv")[1:]] == ["1", "3"]
    assert [r[1] for r in rows(tmp_path / "positive-pay-acme-5-check-1.csv")[1:]] == ["1", "3"]
    assert result.done is True


def test_an_incomplete_address_or_an_empty_one_fails_that_item_naming_what_is_missing(
        tmp_path):
    empty = Address(None, None, None, None, None, None, None)
    result = CheckAdapter().submit(ctx(tmp_path), [
        line(1, addr=address(city=" ", postal_code=None)), line(2, addr=empty), line(3)])
    reasons = {o.item_id: o.reason for o in result.outcomes}
    assert reasons[1] == "incomplete mailing address: no city, no postal code"
    assert reasons[2] == "no mailing address"
    assert reasons[3] is None


def test_a_non_positive_amount_fails_that_item(tmp_path):
    result = CheckAdapter().submit(ctx(tmp_path), [line(1, -500), line(2)])
    assert [o.status for o in result.outcomes] == [FAILED, SUCCEEDED]
    assert "positive" in result.outcomes[0].reason


def test_a_batch_of_another_method_is_refused(tmp_path):
    c = BatchContext("acme", 5, PAYOUT_DATE, "paypal", 1, "k", tmp_path)
    with pytest.raises(ValueError):
        CheckAdapter().submit(c, [line(1)])


def test_an_unsafe_idempotency_key_cannot_write_outside_the_outbox(tmp_path):
    c = BatchContext("acme", 5, PAYOUT_DATE, "check", 1, "../../etc/x", tmp_path / "out")
    with pytest.raises(ValueError):
        CheckAdapter().submit(c, [line(1)])
    assert not (tmp_path / "out").exists()


def test_find_answers_submitted_from_the_files_and_refused_without_them(tmp_path):
    adapter = CheckAdapter()
    lines = [line(1), line(2, addr=None)]
    assert adapter.find(ctx(tmp_path), lines).state == REFUSED
    adapter.submit(ctx(tmp_path), lines)
    found = adapter.find(ctx(tmp_path), lines)
    assert found.state == SUBMITTED and found.done is True
    assert found.provider_batch_id == "checks-acme-5-check-1.csv"
    assert [(o.item_id, o.status, o.provider_item_id) for o in found.outcomes] == \
        [(1, SUCCEEDED, "1"), (2, FAILED, None)]


def test_find_refuses_a_check_file_without_its_positive_pay_file_and_resubmitting_repairs_it(
        tmp_path):
    adapter = CheckAdapter()
    lines = [line(1)]
    adapter.submit(ctx(tmp_path), lines)
    (tmp_path / "positive-pay-acme-5-check-1.csv").unlink()
    refused = adapter.find(ctx(tmp_path), lines)
    assert refused.state == REFUSED and "positive-pay" in refused.error
    adapter.submit(ctx(tmp_path), lines)
    assert adapter.find(ctx(tmp_path), lines).state == SUBMITTED


def test_find_refuses_a_file_that_lacks_an_item_of_the_batch(tmp_path):
    adapter = CheckAdapter()
    adapter.submit(ctx(tmp_path), [line(1)])
    refused = adapter.find(ctx(tmp_path), [line(1), line(2)])
    assert refused.state == REFUSED and "check 2" in refused.error


def test_poll_answers_from_the_files_and_unknown_when_they_are_gone(tmp_path):
    adapter = CheckAdapter()
    lines = [line(1)]
    submitted = adapter.submit(ctx(tmp_path), lines)
    polled = adapter.poll(ctx(tmp_path), submitted.provider_batch_id, lines)
    assert polled.state == SUBMITTED and polled.done
    assert [o.status for o in polled.outcomes] == [SUCCEEDED]
    (tmp_path / "checks-acme-5-check-1.csv").unlink()
    gone = adapter.poll(ctx(tmp_path), submitted.provider_batch_id, lines)
    assert gone.state == UNKNOWN and "not found" in gone.error


def test_registry_gives_the_check_adapter_with_the_configured_account(tmp_path):
    adapter = adapter_for("check", SimpleNamespace(check_account="987654321"))
    assert isinstance(adapter, CheckAdapter) and adapter.method == "check"
    assert adapter.account == "987654321"
    assert adapter_for("check", SimpleNamespace()).account == PLACEHOLDER_ACCOUNT
    with pytest.raises(UnknownMethodError):
        adapter_for("wire", SimpleNamespace())
