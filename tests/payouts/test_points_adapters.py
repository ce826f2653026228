"""Amex MR and Bilt points transfers: transfer file, partner sandbox response, poll."""
from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
from types import SimpleNamespace

import pytest

from settlement.payouts.base import (
    FAILED, PENDING, REFUSED, SUBMITTED, SUCCEEDED, BatchContext, PayoutLine,
)
from settlement.payouts.csvsafe import FileConflictError
from settlement.payouts.points import (
    TRANSFER_COLUMNS, AmexMRAdapter, BiltAdapter, ResponseFileError, ingest_response,
)
from settlement.payouts.registry import adapter_for
from sandboxes import partners

PAYOUT_DATE = dt.date(2026, 11, 15)
ADAPTERS = [AmexMRAdapter, BiltAdapter]


def line(item_id, account="MR-1111", points=1000):
    return PayoutLine(item_id=item_id, reference=f"acme-5-{item_id}", member=f"m-{item_id}",
                      amount=points, currency="USD", digits=2, points=points,
                      destination=account, address=None)


def ctx(adapter, outbox, seq=1):
    return BatchContext(tenant="acme", run_id=5, payout_date=PAYOUT_DATE, method=adapter.method,
                        seq=seq, idempotency_key=f"acme-5-{adapter.method}-{seq}",
                        outbox=outbox)


def rows(path):
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def write(path, text):
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.mark.parametrize("cls", ADAPTERS)
def test_transfer_then_sandbox_response_then_poll_gives_succeeded_and_failed_with_reasons(
        cls, tmp_path):
    adapter = cls()
    c = ctx(adapter, tmp_path)
    lines = [line(1, "MR-1111"), line(2, "MR-000X"), line(3, "MR-20000"), line(4, "MR-4444")]
    submitted = adapter.submit(c, lines)
    assert submitted.state == SUBMITTED
    partners.respond(tmp_path, adapter.partner, c.idempotency_key)
    polled = adapter.poll(c, submitted.provider_batch_id, lines)
    assert polled.state == SUBMITTED and polled.done is True and polled.error is None
    assert [(o.item_id, o.status, o.provider_status, o.reason) for o in polled.outcomes] == [
        (1, SUCCEEDED, "ACCEPTED", None),
        (2, FAILED, "REJECTED", "account closed"),
        (3, FAILED, "REJECTED", "account closed"),
        (4, SUCCEEDED, "ACCEPTED", None),
    ]


@pytest.mark.parametrize("cls, prefix", [(AmexMRAdapter, "amex"), (BiltAdapter, "bilt")])
def test_submit_writes_the_transfer_file_and_answers_every_item_pending(cls, prefix, tmp_path):
    adapter = cls()
    c = ctx(adapter, tmp_path)
    result = adapter.submit(c, [line(2, points=600), line(1, points=2500)])
    name = f"{prefix}-transfer-acme-5-{adapter.method}-1.csv"
    assert result.state == SUBMITTED and result.provider_batch_id == name
    assert result.done is False
    assert [(o.item_id, o.status) for o in result.outcomes] == [(2, PENDING), (1, PENDING)]
    assert rows(tmp_path / name) == [
        list(TRANSFER_COLUMNS),
        ["acme-5-1", "MR-1111", "2500", "m-1", "2026-11-15"],
        ["acme-5-2", "MR-1111", "600", "m-2", "2026-11-15"],
    ]


@pytest.mark.parametrize("cls", ADAPTERS)
def test_resubmitting_the_same_batch_writes_a_byte_identical_transfer_file(cls, tmp_path):
    adapter = cls()
    c = ctx(adapter, tmp_path)
    lines = [line(1), line(2)]
    adapter.submit(c, lines)
    before = (tmp_path / adapter.transfer_name(c)).read_bytes()
    adapter.submit(c, list(reversed(lines)))
    assert (tmp_path / adapter.transfer_name(c)).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [adapter.transfer_name(c)]
    with pytest.raises(FileConflictError):
        adapter.submit(c, [line(1, points=999_999), line(2)])


def test_formula_looking_member_accounts_are_neutralised_and_read_back_by_the_partner(tmp_path):
    adapter = BiltAdapter()
    c = ctx(adapter, tmp_path)
    adapter.submit(c, [line(1, "=cmd|'/c calc'!A0000"), line(2, "-1111")])
    assert [r[1] for r in rows(tmp_path / adapter.transfer_name(c))[1:]] == \
        ["'=cmd|'/c calc'!A0000", "'-1111"]
    seen = []
    partners.respond(tmp_path, "bilt", c.idempotency_key,
                     reject=lambda row: seen.append(row["member_account"]))
    assert seen == ["=cmd|'/c calc'!A0000", "-1111"]


def test_poll_without_a_response_keeps_every_item_pending(tmp_path):
    adapter = AmexMRAdapter()
    c = ctx(adapter, tmp_path)
    lines = [line(1), line(2)]
    submitted = adapter.submit(c, lines)
    polled = adapter.poll(c, submitted.provider_batch_id, lines)
    assert polled.state == SUBMITTED and polled.done is False
    assert [o.status for o in polled.outcomes] == [PENDING, PENDING]


def test_a_response_that_omits_an_item_leaves_it_pending_and_the_batch_not_done(tmp_path):
    adapter = AmexMRAdapter()
    c = ctx(adapter, tmp_path)
    lines = [line(1), line(2)]
    adapter.submit(c, lines)
    write(tmp_path / adapter.response_name(c), "reference,status,reason\r\nacme-5-1,ACCEPTED,\r\n")
    polled = adapter.poll(c, "x", lines)
    assert [o.status for o in polled.outcomes] == [SUCCEEDED, PENDING]
    assert polled.done is False


def test_the_sandbox_takes_a_custom_rejection_rule(tmp_path):
    adapter = BiltAdapter()
    c = ctx(adapter, tmp_path)
    lines = [line(1, points=100), line(2, points=5000)]
    adapter.submit(c, lines)
    partners.respond(tmp_path, "bilt", c.idempotency_key,
                     reject=lambda row: "over the limit" if int(row["points"]) > 1000 else None)
    outcomes = adapter.poll(c, "x", lines).outcomes
    assert [(o.status, o.reason) for o in outcomes] == [(SUCCEEDED, None),
                                                        (FAILED, "over the limit")]


@pytest.mark.parametrize("cls", ADAPTERS)
def test_find_answers_submitted_if_the_transfer_file_exists_and_refused_if_not(cls, tmp_path):
    adapter = cls()
    c = ctx(adapter, tmp_path)
    lines = [line(1), line(2)]
    assert adapter.find(c, lines).state == REFUSED
    adapter.submit(c, lines)
    found = adapter.find(c, lines)
    assert found.state == SUBMITTED and found.provider_batch_id == adapter.transfer_name(c)
    assert [o.status for o in found.outcomes] == [PENDING, PENDING]
    missing = adapter.find(c, lines + [line(3)])
    assert missing.state == REFUSED and "acme-5-3" in missing.error


def test_lines_the_partner_cannot_take_fail_alone_and_stay_out_of_the_file(tmp_path):
    adapter = AmexMRAdapter()
    c = ctx(adapter, tmp_path)
    lines = [line(1), line(2, account=None), line(3, points=499), line(4, points=None)]
    result = adapter.submit(c, lines)
    assert [(o.status, o.reason) for o in result.outcomes] == [
        (PENDING, None),
        (FAILED, "no Amex Membership Rewards account"),
        (FAILED, "below the Amex Membership Rewards minimum of 500 points"),
        (FAILED, "no points to transfer"),
    ]
    assert [r[0] for r in rows(tmp_path / adapter.transfer_name(c))[1:]] == ["acme-5-1"]
    partners.respond(tmp_path, "amex", c.idempotency_key)
    polled = adapter.poll(c, "x", lines)
    assert [o.status for o in polled.outcomes] == [SUCCEEDED, FAILED, FAILED, FAILED]
    assert polled.done is True


def test_bilt_takes_small_transfers_that_amex_refuses(tmp_path):
    adapter = BiltAdapter()
    result = adapter.submit(ctx(adapter, tmp_path), [line(1, points=50)])
    assert [o.status for o in result.outcomes] == [PENDING]


HEADER = "reference,status,reason\r\n"


@pytest.mark.parametrize("text, line_no, field, code", [
    ("reference,status\r\nacme-5-1,ACCEPTED\r\n", 1, "reason", "missing_column"),
    ("", 1, None, "empty_file"),
    (HEADER + "acme-5-1,ACCEPTED,\r\nacme-5-9,ACCEPTED,\r\n", 3, "reference",
     "unknown_reference"),
    (HEADER + "acme-5-1,ACCEPTED,\r\nacme-5-2,REJECTED,closed\r\nacme-5-1,REJECTED,x\r\n", 4,
     "reference", "duplicate_reference"),
    (HEADER + "acme-5-1,ACCEPTED,\r\nacme-5-2,MAYBE,\r\n", 3, "status", "unknown_status"),
    (HEADER + "acme-5-1,ACCEPTED,\r\n,ACCEPTED,\r\n", 3, "reference", "missing"),
    (HEADER + "acme-5-1,ACCEPTED,\r\nacme-5-2,ACCEPTED\r\n", 3, "reason", "wrong_field_count"),
    (HEADER + "acme-5-1,ACCEPTED,\r\nacme-5-2,\"ACC\"EPTED,\r\n", 3, None, "invalid_csv"),
])
def test_a_malformed_response_file_is_refused_whole_naming_the_line_and_field(
        tmp_path, text, line_no, field, code):
    path = write(tmp_path / "amex-response-k.csv", text)
    with pytest.raises(ResponseFileError) as info:
        ingest_response(path, [line(1), line(2)])
    first = info.value.errors[0]
    assert (first.line, first.field, first.code) == (line_no, field, code)
    assert f"line {line_no}" in str(info.value)
    if field:
        assert f"field {field}" in str(info.value)


def test_a_response_file_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "amex-response-k.csv"
    path.write_bytes(HEADER.encode() + b"acme-5-1,ACCEPTED,\r\nacme-5-2,REJECTED,ferm\xe9\r\n")
    with pytest.raises(ResponseFileError) as info:
        ingest_response(path, [line(1), line(2)])
    assert info.value.errors[0].line == 3


def test_every_fault_of_a_response_file_is_reported_at_once(tmp_path):
    path = write(tmp_path / "r.csv", HEADER + "acme-5-9,ACCEPTED,\r\nacme-5-1,NOPE,\r\n")
    with pytest.raises(ResponseFileError) as info:
        ingest_response(path, [line(1)])
    assert [(e.line, e.field) for e in info.value.errors] == [(2, "reference"), (3, "status")]
    assert info.value.errors[0].as_dict()["code"] == "unknown_reference"


def test_a_malformed_response_applies_nothing_every_item_stays_pending_with_the_error(tmp_path):
    adapter = AmexMRAdapter()
    c = ctx(adapter, tmp_path)
    lines = [line(1), line(2)]
    adapter.submit(c, lines)
    write(tmp_path / adapter.response_name(c),
          HEADER + "acme-5-1,ACCEPTED,\r\nacme-5-2,LOST,\r\n")
    polled = adapter.poll(c, "x", lines)
    assert [o.status for o in polled.outcomes] == [PENDING, PENDING]
    assert polled.done is False
    assert "line 3" in polled.error and "field status" in polled.error


def test_response_columns_may_come_in_any_order_with_a_bom_and_any_status_case(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeffStatus,Reason,Reference\r\nrejected,,acme-5-1\r\n"
                     "accepted,,acme-5-2\r\n".encode())
    outcomes = ingest_response(path, [line(1), line(2)])
    assert [(o.status, o.reason) for o in outcomes] == [
        (FAILED, "rejected by the partner"), (SUCCEEDED, None)]


def test_a_long_partner_reason_is_cut_to_what_the_item_can_store(tmp_path):
    path = write(tmp_path / "r.csv", HEADER + "acme-5-1,REJECTED," + "x" * 500 + "\r\n")
    assert len(ingest_response(path, [line(1)])[0].reason) == 200


def test_the_sandbox_cli_answers_every_transfer_file_lacking_a_response(tmp_path):
    amex, bilt = AmexMRAdapter(), BiltAdapter()
    run = tmp_path / "acme" / "run-5"
    amex.submit(ctx(amex, run), [line(1)])
    bilt.submit(ctx(bilt, run), [line(2, "B-0000")])
    bilt.submit(ctx(bilt, run, seq=2), [line(3)])
    partners.respond(run, "bilt", "acme-5-bilt-2", reject=lambda row: "already answered")
    assert partners.main(["--outbox", str(tmp_path)]) == 0
    assert ingest_response(run / "amex-response-acme-5-amex_mr-1.csv", [line(1)])[0].status \
        == SUCCEEDED
    assert ingest_response(run / "bilt-response-acme-5-bilt-1.csv",
                           [line(2, "B-0000")])[0].reason == "account closed"
    # The one already answered is left alone.
    assert ingest_response(run / "bilt-response-acme-5-bilt-2.csv",
                           [line(3)])[0].reason == "already answered"
    assert partners.unanswered(tmp_path) == []


def test_the_sandbox_cli_runs_as_a_module(tmp_path):
    adapter = BiltAdapter()
    adapter.submit(ctx(adapter, tmp_path), [line(1)])
    done = subprocess.run([sys.executable, "-m", "sandboxes.partners",
                           "--outbox", str(tmp_path)], capture_output=True, text=True,
                          check=True)
    assert "1 transfer file(s) answered" in done.stdout
    assert (tmp_path / "bilt-response-acme-5-bilt-1.csv").exists()


def test_registry_gives_the_points_adapters():
    settings = SimpleNamespace()
    assert isinstance(adapter_for("amex_mr", settings), AmexMRAdapter)
    assert isinstance(adapter_for("bilt", settings), BiltAdapter)
