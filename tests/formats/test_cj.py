"""CJ commission detail records: status mapping, corrections, exact amounts, envelopes."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.reports.formats import LineError, ParseContext, ParsedLine, ReportFormatError
from settlement.reports.formats import cj, parser_for

CTX = ParseContext("USD", 2, datetime.date(2026, 11, 24))
FIXTURE = Path(__file__).parents[2] / "fixtures" / "reports" / "us-cashback" / "cj_commissions.json"
RAW = "@@RAW@@"


def record(**changes) -> dict:
    base = {
        "commissionId": "3179263458", "orderId": "MCY-88213405", "shopperId": "RR000017",
        "advertiserId": "4518721", "advertiserName": "Macy's",
        "eventDate": "2026-06-03T14:22:10Z", "saleAmountUsd": "129.99",
        "pubCommissionAmountUsd": "5.20", "actionStatus": "locked",
        "validationStatus": "ACCEPTED", "original": True, "originalActionId": "3179263458",
        "correctionReason": None,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def body(doc, raw: str | None = None) -> bytes:
    text = json.dumps(doc)
    if raw is not None:
        text = text.replace(json.dumps(RAW), raw)
    return text.encode()


def run(data: bytes, media: str = "json", ctx: ParseContext = CTX) -> list:
    return list(cj.PARSERS[media]([data], ctx))


def one(rec: dict, ctx: ParseContext = CTX, raw: str | None = None):
    return run(body([rec], raw), ctx=ctx)


def only_line(results) -> ParsedLine:
    assert len(results) == 1 and isinstance(results[0], ParsedLine), results
    return results[0]


def codes(results) -> set[tuple]:
    return {(e.line, e.field, e.code) for e in results if isinstance(e, LineError)}


def test_cj_is_registered_for_json_and_ndjson():
    assert parser_for("cj", "json") is cj.parse_json
    assert parser_for("cj", "ndjson") is cj.parse_ndjson
    with pytest.raises(ReportFormatError):
        parser_for("cj", "csv")


def test_cj_record_maps_every_field_to_the_parsed_line():
    line = only_line(one(record(category="Apparel")))
    assert line == ParsedLine(1, "3179263458", "MCY-88213405", "RR000017", "4518721", "apparel",
                              datetime.date(2026, 6, 3), 1299900, 52000, "USD", "confirmed", None)


@pytest.mark.parametrize("action", ["locked", "closed"])
@pytest.mark.parametrize("validation", ["ACCEPTED", "AUTOMATED"])
def test_cj_locked_or_closed_and_accepted_or_automated_maps_to_confirmed(action, validation):
    line = only_line(one(record(actionStatus=action, validationStatus=validation)))
    assert line.status == "confirmed"


@pytest.mark.parametrize("action", ["new", "extended", "locked", "closed"])
def test_cj_declined_validation_maps_to_reversed_whatever_the_action_status(action):
    line = only_line(one(record(actionStatus=action, validationStatus="DECLINED")))
    assert line.status == "reversed"


@pytest.mark.parametrize("action,validation", [
    ("new", "PENDING"), ("new", "ACCEPTED"), ("new", "AUTOMATED"), ("extended", "PENDING"),
    ("extended", "ACCEPTED"), ("locked", "PENDING"), ("closed", "PENDING"),
])
def test_cj_not_yet_locked_or_not_yet_validated_maps_to_pending(action, validation):
    line = only_line(one(record(actionStatus=action, validationStatus=validation)))
    assert line.status == "pending"


def test_cj_status_words_are_case_insensitive():
    line = only_line(one(record(actionStatus="LOCKED", validationStatus="accepted")))
    assert line.status == "confirmed"


def test_cj_unknown_action_status_is_an_error_naming_line_and_field():
    results = run(body([record(), record(actionStatus="settled")]))
    assert isinstance(results[0], ParsedLine)
    assert codes(results) == {(2, "actionStatus", "unknown_status")}
    assert "settled" in results[1].message


def test_cj_unknown_validation_status_is_an_error_naming_line_and_field():
    assert codes(one(record(validationStatus="APPROVED"))) == {
        (1, "validationStatus", "unknown_status")}


def test_cj_missing_status_fields_are_errors():
    assert codes(one(record(actionStatus=..., validationStatus=""))) == {
        (1, "actionStatus", "missing_field"), (1, "validationStatus", "missing_field")}


def test_cj_correction_record_points_at_its_original_and_keeps_its_own_id():
    rec = record(commissionId="3187734401", original=False, originalActionId="3179263458",
                 correctionReason="RETURNED_MERCHANDISE", saleAmountUsd="-29.99",
                 pubCommissionAmountUsd="-1.20")
    line = only_line(one(rec))
    assert line.transaction_id == "3187734401"
    assert line.original_transaction_id == "3179263458"
    assert (line.sale_amount, line.commission_amount) == (-299900, -12000)


def test_cj_correction_without_original_action_id_is_an_error():
    rec = record(commissionId="3187734401", original=False, originalActionId=...)
    assert codes(one(rec)) == {(1, "originalActionId", "missing_field")}
    rec = record(commissionId="3187734401", original=False, originalActionId="  ")
    assert codes(one(rec)) == {(1, "originalActionId", "missing_field")}


def test_cj_correction_cannot_point_at_itself():
    rec = record(commissionId="3187734401", original=False, originalActionId="3187734401")
    assert codes(one(rec)) == {(1, "originalActionId", "invalid_reference")}


def test_cj_original_record_ignores_original_action_id():
    line = only_line(one(record(original=True, originalActionId="999")))
    assert line.original_transaction_id is None
    line = only_line(one(record(original=True, originalActionId=...)))
    assert line.original_transaction_id is None


def test_cj_missing_original_flag_is_an_error_since_a_delta_would_read_as_an_absolute():
    assert codes(one(record(original=...))) == {(1, "original", "missing_field")}


@pytest.mark.parametrize("value,expected", [("true", None), ("false", "1"), ("FALSE", "1")])
def test_cj_original_flag_may_be_the_text_true_or_false(value, expected):
    line = only_line(one(record(commissionId="2", original=value, originalActionId="1")))
    assert line.original_transaction_id == expected


@pytest.mark.parametrize("value", ["yes", 1, "0"])
def test_cj_original_flag_must_be_a_boolean(value):
    assert codes(one(record(original=value))) == {(1, "original", "invalid_boolean")}


def test_cj_negative_amounts_are_accepted():
    line = only_line(one(record(saleAmountUsd="-129.99", pubCommissionAmountUsd="-5.20")))
    assert (line.sale_amount, line.commission_amount) == (-1299900, -52000)


def test_cj_negative_sale_with_positive_commission_is_refused_naming_the_commission_field():
    assert codes(one(record(saleAmountUsd="-10.00", pubCommissionAmountUsd="0.40"))) == {
        (1, "pubCommissionAmountUsd", "sign_mismatch")}


@pytest.mark.parametrize("literal,units", [
    ("129.99", 1299900), ("0.1", 1000), ("1234567890.07", 12345678900700), ("12", 120000),
    ("12.50", 125000), ("-3.30", -33000), ("12.500", 125000), ("7.781", 77810),
    ("-51.826", -518260), ("12.00000", 120000),
])
def test_cj_json_number_amount_is_parsed_exactly_without_float(literal, units):
    line = only_line(one(record(pubCommissionAmountUsd=RAW), raw=literal))
    assert line.commission_amount == units


@pytest.mark.parametrize("raw,code", [
    ("1e3", "invalid_amount"), ("1E+2", "invalid_amount"), ('"1e3"', "invalid_amount"),
    ('"NaN"', "invalid_amount"), ('"Infinity"', "invalid_amount"),
    ('"-Infinity"', "invalid_amount"), ('"1,234.56"', "invalid_amount"),
    ('"\\u0661\\u0662\\u0663"', "invalid_amount"), ('"١٢٣"', "invalid_amount"),
    ('"12.34567"', "too_many_decimals"), ("12.34561", "too_many_decimals"),
    ('"-0.00"', "negative_zero"), ('"-0"', "negative_zero"), ('"12."', "invalid_amount"),
    ('".5"', "invalid_amount"), ('"+5"', "invalid_amount"), ('"$5.00"', "invalid_amount"),
    ("true", "invalid_amount"), ("null", "missing_field"), ('""', "missing_field"),
    ('"1234567890123"', "invalid_amount"), ("[1]", "invalid_amount"),
])
def test_cj_hostile_amount_is_rejected_naming_line_and_field(raw, code):
    results = run(body([record(), record(pubCommissionAmountUsd=RAW)], raw))
    assert isinstance(results[0], ParsedLine)
    assert codes(results) == {(2, "pubCommissionAmountUsd", code)}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_cj_bare_json_constant_makes_the_document_invalid(constant):
    with pytest.raises(ReportFormatError) as exc:
        run(body([record(saleAmountUsd=RAW)], constant))
    assert exc.value.errors[0].code == "invalid_json"


def test_cj_amounts_are_usd_so_a_non_usd_tenant_gets_wrong_currency_on_the_line():
    results = one(record(), ctx=ParseContext("JPY", 0, datetime.date(2026, 11, 24)))
    assert codes(results) == {(1, "pubCommissionAmountUsd", "wrong_currency")}
    assert "USD" in results[0].message and "JPY" in results[0].message


@pytest.mark.parametrize("field", ["commissionId", "advertiserId", "eventDate", "saleAmountUsd",
                                   "pubCommissionAmountUsd"])
def test_cj_missing_required_field_is_an_error_naming_it(field):
    assert codes(one(record(**{field: ...}))) == {(1, field, "missing_field")}


def test_cj_optional_fields_may_be_absent():
    line = only_line(one(record(orderId=..., shopperId=None, correctionReason=...)))
    assert (line.order_id, line.member, line.category) == (None, None, None)


def test_cj_unknown_member_still_parses():
    assert only_line(one(record(shopperId="RR999999"))).member == "RR999999"


def test_cj_numeric_ids_become_strings():
    line = only_line(one(record(commissionId=RAW, advertiserId=4518721), raw="3179263458"))
    assert (line.transaction_id, line.retailer) == ("3179263458", "4518721")


def test_cj_every_bad_field_of_a_line_is_reported_at_once():
    rec = record(commissionId="", eventDate="yesterday", saleAmountUsd="1e3",
                 validationStatus="MAYBE")
    assert codes(one(rec)) == {(1, "commissionId", "missing_field"),
                               (1, "eventDate", "invalid_date"),
                               (1, "saleAmountUsd", "invalid_amount"),
                               (1, "validationStatus", "unknown_status")}


def test_cj_future_event_date_is_refused():
    assert codes(one(record(eventDate="2026-11-25T00:00:01Z"))) == {
        (1, "eventDate", "future_date")}


def test_cj_overlong_id_is_refused():
    assert codes(one(record(commissionId="9" * 129))) == {(1, "commissionId", "too_long")}


@pytest.mark.parametrize("doc", [
    lambda recs: recs,
    lambda recs: {"data": {"publisherCommissions": {"count": len(recs), "records": recs}}},
    lambda recs: {"records": recs},
])
def test_cj_accepts_bare_array_and_api_envelopes(doc):
    results = run(body(doc([record(), record(commissionId="2")])))
    assert [r.transaction_id for r in results] == ["3179263458", "2"]


@pytest.mark.parametrize("doc", [{"data": {"publisherCommissions": None}},
                                 {"errors": [{"message": "Not authorized"}], "data": None},
                                 {"data": {"records": "nope"}}, "records"])
def test_cj_document_without_records_is_a_format_error(doc):
    with pytest.raises(ReportFormatError) as exc:
        run(body(doc))
    assert exc.value.errors[0].code == "invalid_json"


def test_cj_non_object_record_is_an_error_and_does_not_hide_the_others():
    results = run(body([record(), ["3179263458"], record(commissionId="3")]))
    assert [type(r).__name__ for r in results] == ["ParsedLine", "LineError", "ParsedLine"]
    assert codes(results) == {(2, None, "invalid_record")}


def test_cj_ndjson_errors_carry_physical_line_numbers():
    data = b"\n".join([json.dumps(record()).encode(), b"", b"   ",
                       json.dumps(record(commissionId="2", saleAmountUsd="1,000.00")).encode(),
                       b"{not json",
                       json.dumps(record(commissionId="3")).encode()]) + b"\n"
    results = run(data, "ndjson")
    assert [r.line for r in results if isinstance(r, ParsedLine)] == [1, 6]
    assert codes(results) == {(4, "saleAmountUsd", "invalid_amount"), (5, None, "invalid_json")}


def test_cj_ndjson_bare_nan_is_an_error_on_its_line():
    data = b'{"saleAmountUsd": NaN}\n' + json.dumps(record()).encode()
    results = run(data, "ndjson")
    assert codes(results) == {(1, None, "invalid_json")}
    assert isinstance(results[1], ParsedLine) and results[1].line == 2


def test_cj_ndjson_streams_records_split_across_chunks():
    data = (json.dumps(record()) + "\n" + json.dumps(record(commissionId="2")) + "\n").encode()
    results = list(cj.parse_ndjson((data[i:i + 5] for i in range(0, len(data), 5)), CTX))
    assert [r.transaction_id for r in results] == ["3179263458", "2"]


def test_cj_sample_fixture_parses_with_no_errors():
    results = run(FIXTURE.read_bytes())
    assert results and all(isinstance(r, ParsedLine) for r in results), codes(results)
    assert 10 <= len(results) <= 30
    assert {r.status for r in results} == {"pending", "confirmed", "reversed"}
    by_id = {r.transaction_id: r for r in results}
    corrections = [r for r in results if r.original_transaction_id is not None]
    assert corrections and all(r.original_transaction_id in by_id for r in corrections)
    assert any(r.commission_amount < 0 for r in corrections)
    assert any(r.member == "RR999999" for r in results)
    for r in results:
        assert datetime.date(2026, 6, 1) <= r.event_date <= datetime.date(2026, 11, 20)
        assert r.retailer in {"4518721", "3298411", "1560882"}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.decimals(allow_nan=False, allow_infinity=False).map(str),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=5)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(record())), JSON_VALUES, max_size=6))
def test_cj_any_field_values_give_a_line_or_errors_never_an_exception(changes):
    for result in one(record(**changes)):
        assert isinstance(result, (ParsedLine, LineError))
        if isinstance(result, LineError):
            assert result.line == 1 and result.field and result.code and result.message


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=-10**9, max_value=10**9, places=3, allow_nan=False))
def test_cj_decimal_amount_text_parses_to_exact_ten_thousandths(value):
    text = f"{value:.3f}"
    if text.startswith("-") and value == 0:
        return
    rec = record(saleAmountUsd="0.00", pubCommissionAmountUsd=RAW)
    line = only_line(one(rec, raw=text))
    assert line.commission_amount == int(value * 10_000)
