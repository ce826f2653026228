"""Awin transactions: nested amounts, JSON numbers read exactly, statuses, click refs."""
from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.reports.formats import LineError, ParseContext, ParsedLine, ReportFormatError
from settlement.reports.formats import awin, parser_for

CTX = ParseContext("USD", 2, datetime.date(2026, 11, 24))
FIXTURE = (Path(__file__).parents[2] / "fixtures" / "reports" / "us-cashback"
           / "awin_transactions.json")
RAW = "@@RAW@@"


def txn(**changes) -> dict:
    base = {
        "id": 2819450031, "url": "https://portal.example.com", "advertiserId": 6220,
        "publisherId": 1084412, "commissionStatus": "approved",
        "commissionAmount": {"amount": 24.48, "currency": "USD"},
        "saleAmount": {"amount": 612, "currency": "USD"},
        "clickRefs": {"clickRef": "RR000562", "clickRef2": None},
        "transactionDate": "2026-06-08T22:14:00", "type": "Commission group transaction",
        "amended": False, "amendReason": None, "orderRef": "HCOM-72231904",
        "advertiserName": "Hotels.com",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def body(doc, raw: str | None = None) -> bytes:
    text = json.dumps(doc)
    if raw is not None:
        text = text.replace(json.dumps(RAW), raw)
    return text.encode()


def run(data: bytes, media: str = "json", ctx: ParseContext = CTX) -> list:
    return list(awin.PARSERS[media]([data], ctx))


def one(rec: dict, ctx: ParseContext = CTX, raw: str | None = None):
    return run(body([rec], raw), ctx=ctx)


def only_line(results) -> ParsedLine:
    assert len(results) == 1 and isinstance(results[0], ParsedLine), results
    return results[0]


def codes(results) -> set[tuple]:
    return {(e.line, e.field, e.code) for e in results if isinstance(e, LineError)}


def test_awin_is_registered_for_json_and_ndjson():
    assert parser_for("awin", "json") is awin.parse_json
    assert parser_for("awin", "ndjson") is awin.parse_ndjson


def test_awin_transaction_maps_every_field_to_the_parsed_line():
    assert only_line(one(txn())) == ParsedLine(
        1, "2819450031", "HCOM-72231904", "RR000562", "6220", None,
        datetime.date(2026, 6, 8), 6120000, 244800, "USD", "confirmed", None)


@pytest.mark.parametrize("word,status", [
    ("pending", "pending"), ("approved", "confirmed"), ("declined", "reversed"),
    ("deleted", "reversed"), ("APPROVED", "confirmed"),
])
def test_awin_commission_status_maps_to_status(word, status):
    assert only_line(one(txn(commissionStatus=word))).status == status


@pytest.mark.parametrize("word", ["bonus", "paid", "rejected"])
def test_awin_unknown_commission_status_is_an_error_naming_line_and_field(word):
    results = run(body([txn(), txn(commissionStatus=word)]))
    assert isinstance(results[0], ParsedLine)
    assert codes(results) == {(2, "commissionStatus", "unknown_status")}


@pytest.mark.parametrize("literal,units", [
    ("12.5", 125000), ("0.1", 1000), ("612", 6120000), ("612.0", 6120000), ("24.48", 244800),
    ("1234567.89", 12345678900), ("0.30000000000000000", 3000), ("0.3995", 3995),
])
def test_awin_json_number_amount_is_parsed_exactly_without_float(literal, units):
    rec = txn(commissionAmount={"amount": RAW, "currency": "USD"})
    assert only_line(one(rec, raw=literal)).commission_amount == units


def test_awin_string_amount_is_accepted_too():
    rec = txn(saleAmount={"amount": "612.00", "currency": "USD"})
    assert only_line(one(rec)).sale_amount == 6120000


@pytest.mark.parametrize("raw,code", [
    ("1e3", "invalid_amount"), ("1.5E1", "invalid_amount"), ('"NaN"', "invalid_amount"),
    ('"Infinity"', "invalid_amount"), ('"1,234.56"', "invalid_amount"),
    ('"١٢٣"', "invalid_amount"), ("12.34567", "too_many_decimals"),
    ("24.480000000000001", "too_many_decimals"), ('"-0"', "negative_zero"),
    ("null", "missing_field"), ("false", "invalid_amount"), ('{"value": 1}', "invalid_amount"),
])
def test_awin_hostile_amount_is_rejected_naming_line_and_nested_field(raw, code):
    rec = txn(commissionAmount={"amount": RAW, "currency": "USD"})
    results = run(body([txn(), rec], raw))
    assert isinstance(results[0], ParsedLine)
    assert codes(results) == {(2, "commissionAmount.amount", code)}


@pytest.mark.parametrize("constant", ["NaN", "Infinity"])
def test_awin_bare_json_constant_makes_the_document_invalid(constant):
    rec = txn(commissionAmount={"amount": RAW, "currency": "USD"})
    with pytest.raises(ReportFormatError) as exc:
        run(body([rec], constant))
    assert exc.value.errors[0].code == "invalid_json"


def test_awin_both_currencies_must_be_the_tenants():
    rec = txn(saleAmount={"amount": 612, "currency": "GBP"},
              commissionAmount={"amount": 24.48, "currency": "EUR"})
    assert codes(one(rec)) == {(1, "saleAmount.currency", "wrong_currency"),
                               (1, "commissionAmount.currency", "wrong_currency")}
    rec = txn(commissionAmount={"amount": 24.48})
    assert codes(one(rec)) == {(1, "commissionAmount.currency", "missing_field")}


def test_awin_usd_transaction_for_a_jpy_tenant_is_wrong_currency():
    jp = ParseContext("JPY", 0, datetime.date(2026, 11, 24))
    results = one(txn(saleAmount={"amount": 612, "currency": "USD"},
                      commissionAmount={"amount": 24, "currency": "USD"}), ctx=jp)
    assert codes(results) == {(1, "saleAmount.currency", "wrong_currency"),
                              (1, "commissionAmount.currency", "wrong_currency")}


@pytest.mark.parametrize("field", ["saleAmount", "commissionAmount"])
def test_awin_amount_objects_are_required_and_must_be_objects(field):
    assert codes(one(txn(**{field: ...}))) == {(1, field, "missing_field")}
    assert codes(one(txn(**{field: "12.50"}))) == {(1, field, "invalid_type")}


@pytest.mark.parametrize("refs", [..., None, {}, {"clickRef": None}, {"clickRef": ""},
                                  {"clickRef2": "RR000001"}])
def test_awin_click_refs_may_be_missing_or_null_and_then_there_is_no_member(refs):
    assert only_line(one(txn(clickRefs=refs))).member is None


def test_awin_click_refs_must_be_an_object():
    assert codes(one(txn(clickRefs="RR000562"))) == {(1, "clickRefs", "invalid_type")}
    assert codes(one(txn(clickRefs={"clickRef": ["RR1"]}))) == {
        (1, "clickRefs.clickRef", "invalid_type")}


def test_awin_unknown_member_still_parses():
    assert only_line(one(txn(clickRefs={"clickRef": "RR999999"}))).member == "RR999999"


def test_awin_amended_flag_is_informational():
    old = {"amount": 918, "currency": "USD"}
    line = only_line(one(txn(amended=True, amendReason="Partial return", oldSaleAmount=old)))
    assert line.sale_amount == 6120000
    assert isinstance(only_line(one(txn(amended="maybe"))), ParsedLine)


def test_awin_type_and_advertiser_name_are_ignored():
    line = only_line(one(txn(type="Bonus", advertiserName=None)))
    assert (line.category, line.retailer) == (None, "6220")


@pytest.mark.parametrize("field", ["id", "advertiserId", "transactionDate", "commissionStatus"])
def test_awin_missing_required_field_is_an_error_naming_it(field):
    assert codes(one(txn(**{field: ...}))) == {(1, field, "missing_field")}


def test_awin_negative_sale_with_positive_commission_is_refused():
    rec = txn(saleAmount={"amount": -612, "currency": "USD"})
    assert codes(one(rec)) == {(1, "commissionAmount.amount", "sign_mismatch")}


def test_awin_invalid_and_future_dates_are_refused():
    assert codes(one(txn(transactionDate="2026-13-01T00:00:00"))) == {
        (1, "transactionDate", "invalid_date")}
    assert codes(one(txn(transactionDate="2027-01-01T00:00:00"))) == {
        (1, "transactionDate", "future_date")}


@pytest.mark.parametrize("doc", [{"transactions": []}, {"id": 1}, "[]", 12])
def test_awin_document_must_be_an_array(doc):
    with pytest.raises(ReportFormatError) as exc:
        run(body(doc))
    assert exc.value.errors[0].code == "invalid_json"


def test_awin_not_json_is_a_format_error():
    with pytest.raises(ReportFormatError) as exc:
        run(b"<html>502 Bad Gateway</html>")
    assert exc.value.errors[0].code == "invalid_json"


def test_awin_ndjson_errors_carry_physical_line_numbers():
    bad = json.dumps(txn(id=2, commissionAmount={"amount": RAW, "currency": "USD"}))
    data = "\n".join(["", json.dumps(txn()), bad.replace(json.dumps(RAW), "1e3"), "[1, 2]",
                      json.dumps(txn(id=3))]).encode()
    results = run(data, "ndjson")
    assert [r.line for r in results if isinstance(r, ParsedLine)] == [2, 5]
    assert codes(results) == {(3, "commissionAmount.amount", "invalid_amount"),
                              (4, None, "invalid_record")}


def test_awin_ndjson_line_that_is_not_utf8_is_an_error_on_its_line():
    data = json.dumps(txn()).encode() + b"\n" + b'{"id": "\xff"}\n' + json.dumps(txn(id=3)).encode()
    results = run(data, "ndjson")
    assert codes(results) == {(2, None, "invalid_utf8")}
    assert [r.line for r in results if isinstance(r, ParsedLine)] == [1, 3]


def test_awin_sample_fixture_parses_with_no_errors():
    results = run(FIXTURE.read_bytes())
    assert results and all(isinstance(r, ParsedLine) for r in results), codes(results)
    assert 10 <= len(results) <= 30
    assert {r.status for r in results} == {"pending", "confirmed", "reversed"}
    raw = json.loads(FIXTURE.read_text())
    assert any(t["amended"] for t in raw)
    assert any(t["commissionStatus"] == "declined" for t in raw)
    assert any(r.member == "RR999999" for r in results)
    assert {r.retailer for r in results} == {"6220", "15387"}
    for r in results:
        assert datetime.date(2026, 6, 1) <= r.event_date <= datetime.date(2026, 11, 20)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_awin_arbitrary_ndjson_bytes_give_lines_or_errors_never_a_crash(data):
    for result in run(json.dumps(txn()).encode() + b"\n" + data, "ndjson"):
        assert isinstance(result, (ParsedLine, LineError))


@pytest.mark.parametrize("name", ["clickRef2", "clickRef6"])
def test_awin_member_comes_from_the_click_ref_the_tenant_chose(name):
    ctx = dataclasses.replace(CTX, member_field=name)
    rec = txn(clickRefs={"clickRef": "homepage-banner", name: "RR000777"})
    assert only_line(one(rec, ctx)).member == "RR000777"
    assert only_line(one(txn(clickRefs={"clickRef": "RR000562"}), ctx)).member is None
