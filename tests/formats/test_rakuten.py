"""Rakuten Advertising Signature Orders report: derived ids, line kinds, JPY, u1."""
from __future__ import annotations

import dataclasses
import datetime
import json
import zoneinfo
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.reports.formats import LineError, ParseContext, ParsedLine, ReportFormatError
from settlement.reports.formats import parser_for, rakuten

JP = ParseContext("JPY", 0, datetime.date(2026, 11, 24))
US = ParseContext("USD", 2, datetime.date(2026, 11, 24))
FIXTURE = Path(__file__).parents[2] / "fixtures" / "reports" / "jp-points" / "rakuten_orders.csv"
COLUMNS = ["Member ID (U1)", "MID", "Advertiser Name", "Order ID", "Transaction Date",
           "Transaction Time", "SKU", "Sales", "# of Items", "Total Commission",
           "Process Date", "Process Time"]


def row(**changes) -> dict:
    base = {"Member ID (U1)": "HP000012", "MID": "43245", "Advertiser Name": "スタイルマーケット",
            "Order ID": "245117-20260604-0012045521", "Transaction Date": "2026/06/04",
            "Transaction Time": "10:12:45", "SKU": "SM-TS-001-M", "Sales": "3980",
            "# of Items": "1", "Total Commission": "159", "Process Date": "2026/06/05",
            "Process Time": "03:10:00"}
    base.update(changes)
    return base


def csv_text(rows: list[dict], columns: list[str] | None = None,
             header: list[str] | None = None) -> bytes:
    columns = columns or list(rows[0]) if rows else COLUMNS
    lines = [",".join(header or columns)]
    for r in rows:
        lines.append(",".join(_quote(r.get(c, "")) for c in columns))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value


def run(data: bytes, ctx: ParseContext = JP) -> list:
    return list(rakuten.parse_csv([data], ctx))


def lines(results) -> list[ParsedLine]:
    return [r for r in results if isinstance(r, ParsedLine)]


def codes(results) -> set[tuple]:
    return {(e.line, e.field, e.code) for e in results if isinstance(e, LineError)}


YEN = 10_000  # network units (ten-thousandths of the major unit) per yen
CENT = 100  # and per cent


def only_line(results) -> ParsedLine:
    assert len(results) == 1 and isinstance(results[0], ParsedLine), results
    return results[0]


def test_rakuten_reads_the_report_as_csv_and_the_events_api_as_json_only():
    assert parser_for("rakuten", "csv") is rakuten.parse_csv
    assert parser_for("rakuten", "json") is rakuten.parse_json
    with pytest.raises(ReportFormatError):
        parser_for("rakuten", "ndjson")


def test_rakuten_sale_line_maps_to_a_line_without_status_with_a_derived_id():
    assert only_line(run(csv_text([row()]))) == ParsedLine(
        2, "245117-20260604-0012045521|SM-TS-001-M|sale", "245117-20260604-0012045521",
        "HP000012", "43245", None, datetime.date(2026, 6, 4), 3980 * YEN, 159 * YEN, "JPY", "unstated",
        None)


def test_rakuten_reupload_of_the_same_file_maps_to_the_same_ids():
    data = csv_text([row(), row(SKU="B"), row(SKU="C", Sales="-100", **{"Total Commission": "-4"})])
    first = [r.transaction_id for r in run(data)]
    assert first == [r.transaction_id for r in run(data)]
    assert len(set(first)) == 3


def test_rakuten_same_key_twice_in_a_file_gets_an_occurrence_suffix():
    ids = [r.transaction_id for r in run(csv_text([row(), row(), row()]))]
    assert ids == ["245117-20260604-0012045521|SM-TS-001-M|sale",
                   "245117-20260604-0012045521|SM-TS-001-M|sale|#2",
                   "245117-20260604-0012045521|SM-TS-001-M|sale|#3"]


def test_rakuten_bad_line_does_not_shift_the_occurrence_suffix_of_later_lines():
    results = run(csv_text([row(), row(Sales="1e3"), row()]))
    assert [r.transaction_id for r in lines(results)] == [
        "245117-20260604-0012045521|SM-TS-001-M|sale",
        "245117-20260604-0012045521|SM-TS-001-M|sale|#2"]


def test_rakuten_negative_sku_line_is_an_adjustment_with_its_own_id_and_negative_amounts():
    line = only_line(run(csv_text([row(SKU="COUPON-500", Sales="-500",
                                       **{"Total Commission": "-20"})])))
    assert line.transaction_id == "245117-20260604-0012045521|COUPON-500|adjustment|2026-06-05"
    assert (line.sale_amount, line.commission_amount, line.status) == (-500 * YEN, -20 * YEN,
                                                                   "unstated")


def test_rakuten_us_style_return_with_negative_items_and_amounts_is_an_adjustment():
    line = only_line(run(csv_text([row(Sales="-3980", **{"# of Items": "-1",
                                                         "Total Commission": "-159"})])))
    assert line.transaction_id.endswith("|adjustment|2026-06-05")
    assert (line.sale_amount, line.commission_amount) == (-3980 * YEN, -159 * YEN)


def test_rakuten_positive_deduction_line_is_a_cancellation_with_negated_amounts():
    results = run(csv_text([row(), row(**{"# of Items": "-1", "Process Date": "2026/06/20"})]))
    sale, cancel = lines(results)
    assert cancel.transaction_id == "245117-20260604-0012045521|SM-TS-001-M|deduction|2026-06-20"
    assert (cancel.sale_amount, cancel.commission_amount) == (-3980 * YEN, -159 * YEN)
    assert sale.sale_amount + cancel.sale_amount == 0
    assert sale.commission_amount + cancel.commission_amount == 0
    assert cancel.status == "unstated"


def test_rakuten_returns_of_the_same_sku_on_different_days_are_different_transactions():
    neg = {"Sales": "-3980", "Total Commission": "-159"}
    ids = [r.transaction_id for r in run(csv_text([row(**neg, **{"Process Date": "2026/07/01"}),
                                                   row(**neg, **{"Process Date": "2026/08/01"})]))]
    assert ids[0] != ids[1] and not any("#" in i for i in ids)


def test_rakuten_adjustment_without_process_date_keys_on_order_sku_and_kind():
    line = only_line(run(csv_text([row(Sales="-500", **{"Total Commission": "-20",
                                                        "Process Date": ""})])))
    assert line.transaction_id == "245117-20260604-0012045521|SM-TS-001-M|adjustment"


def test_rakuten_negative_sale_with_positive_commission_is_refused():
    assert codes(run(csv_text([row(Sales="-500")]))) == {
        (2, "Total Commission", "sign_mismatch")}


def test_rakuten_ids_escape_separators_so_different_parts_never_collide():
    a = only_line(run(csv_text([row(**{"Order ID": "A|B", "SKU": "C"})]))).transaction_id
    b = only_line(run(csv_text([row(**{"Order ID": "A", "SKU": "B|C"})]))).transaction_id
    assert a != b and a == "A%7CB|C|sale"


def test_rakuten_overlong_derived_id_becomes_a_digest():
    line = only_line(run(csv_text([row(**{"Order ID": "O" * 100, "SKU": "S" * 100})])))
    assert line.transaction_id.startswith("sha256:") and len(line.transaction_id) <= 128
    again = only_line(run(csv_text([row(**{"Order ID": "O" * 100, "SKU": "S" * 100})])))
    assert again.transaction_id == line.transaction_id
    assert line.order_id == "O" * 100


def test_rakuten_empty_sku_is_allowed():
    line = only_line(run(csv_text([row(SKU="")])))
    assert line.transaction_id == "245117-20260604-0012045521||sale"


def test_rakuten_u1_is_case_sensitive_and_kept_exactly():
    ids = [r.member for r in run(csv_text([row(**{"Member ID (U1)": "hp000012"}),
                                           row(**{"Member ID (U1)": "HP000012"}, SKU="X")]))]
    assert ids == ["hp000012", "HP000012"]


def test_rakuten_u1_is_at_most_72_characters():
    assert only_line(run(csv_text([row(**{"Member ID (U1)": "a" * 72})]))).member == "a" * 72
    assert codes(run(csv_text([row(**{"Member ID (U1)": "a" * 73})]))) == {
        (2, "Member ID (U1)", "too_long")}


def test_rakuten_empty_u1_means_no_member_and_unknown_members_parse():
    assert only_line(run(csv_text([row(**{"Member ID (U1)": ""})]))).member is None
    assert only_line(run(csv_text([row(**{"Member ID (U1)": "HP999999"})]))).member == "HP999999"


def test_rakuten_jpy_amounts_keep_up_to_four_decimals_though_yen_has_no_minor_digits():
    assert only_line(run(csv_text([row(Sales="1980.00")]))).sale_amount == 1980 * YEN
    assert only_line(run(csv_text([row(Sales="1980.5")]))).sale_amount == 19805000
    assert codes(run(csv_text([row(Sales="1980.00001")]))) == {
        (2, "Sales", "too_many_decimals")}


def test_rakuten_usd_report_keeps_sub_cent_commission():
    line = only_line(run(csv_text([row(Sales="39.80", **{"Total Commission": "0.3995"})]), US))
    assert (line.sale_amount, line.commission_amount, line.currency) == (3980 * CENT, 3995,
                                                                         "USD")


@pytest.mark.parametrize("value,code", [
    ("1e3", "invalid_amount"), ("NaN", "invalid_amount"), ("Infinity", "invalid_amount"),
    ("1,980", "invalid_amount"), ("١٢٣", "invalid_amount"), ("１９８０", "invalid_amount"),
    ("¥1980", "invalid_amount"), ("-0", "negative_zero"), ("159.40001", "too_many_decimals"),
    ("", "missing_field"),
])
def test_rakuten_hostile_commission_is_rejected_naming_line_and_field(value, code):
    results = run(csv_text([row(), row(SKU="X", **{"Total Commission": value})]))
    assert len(lines(results)) == 1
    assert codes(results) == {(3, "Total Commission", code)}


def test_rakuten_currency_column_is_optional_but_must_be_the_tenants_when_present():
    assert only_line(run(csv_text([row()]))).currency == "JPY"
    assert only_line(run(csv_text([row(Currency="jpy")]))).currency == "JPY"
    assert only_line(run(csv_text([row(Currency="")]))).currency == "JPY"
    assert codes(run(csv_text([row(Currency="USD")]))) == {(2, "Currency", "wrong_currency")}


@pytest.mark.parametrize("value,status", [("locked", "confirmed"), ("Locked", "confirmed"),
                                          ("unlocked", "unstated"),
                                          ("Not Applicable", "unstated"), ("", "unstated")])
def test_rakuten_commission_status_locked_confirms_and_anything_else_is_left_to_the_hold(
        value, status):
    assert only_line(run(csv_text([row(**{"Commission Status": value})]))).status == status


def test_rakuten_unknown_commission_status_is_an_error():
    assert codes(run(csv_text([row(**{"Commission Status": "paid"})]))) == {
        (2, "Commission Status", "unknown_status")}


def test_rakuten_no_line_is_ever_reversed_a_cancellation_is_a_negative_line():
    data = csv_text([row(**{"Commission Status": "locked"}),
                     row(**{"# of Items": "-1", "Commission Status": "locked"})])
    assert {r.status for r in run(data)} == {"confirmed"}


@pytest.mark.parametrize("value,day", [
    ("2026/06/04", datetime.date(2026, 6, 4)), ("2026/6/4", datetime.date(2026, 6, 4)),
    ("2026-06-04", datetime.date(2026, 6, 4)), ("06/04/2026", datetime.date(2026, 6, 4)),
    ("6/4/26", datetime.date(2026, 6, 4)), ("2026/06/04 10:12:45", datetime.date(2026, 6, 4)),
    ("2026-06-04T10:12:45+09:00", datetime.date(2026, 6, 4)),
])
def test_rakuten_transaction_date_accepts_iso_japanese_and_us_forms(value, day):
    assert only_line(run(csv_text([row(**{"Transaction Date": value})]))).event_date == day


@pytest.mark.parametrize("value,code", [
    ("2026/02/30", "invalid_date"), ("25/06/2026", "invalid_date"), ("2026年6月4日", "invalid_date"),
    ("２０２６/06/04", "invalid_date"), ("06-04-2026", "invalid_date"), ("", "missing_field"),
    ("2026/12/01", "future_date"), ("12/01/26", "future_date"),
])
def test_rakuten_bad_transaction_date_is_an_error_naming_it(value, code):
    assert codes(run(csv_text([row(**{"Transaction Date": value})]))) == {
        (2, "Transaction Date", code)}


def test_rakuten_bad_process_date_is_an_error_but_an_empty_one_is_fine():
    assert codes(run(csv_text([row(**{"Process Date": "soon"})]))) == {
        (2, "Process Date", "invalid_date")}
    assert isinstance(only_line(run(csv_text([row(**{"Process Date": ""})]))), ParsedLine)


@pytest.mark.parametrize("value", ["one", "1.5", "١", "-"])
def test_rakuten_number_of_items_must_be_a_whole_number(value):
    assert codes(run(csv_text([row(**{"# of Items": value})]))) == {
        (2, "# of Items", "invalid_integer")}


def test_rakuten_header_is_tolerant_of_case_and_whitespace():
    header = ["member id  (u1)", " mid", "ADVERTISER NAME", "order id", "transaction date",
              "Transaction  Time", "sku", "SALES", "#  of items", "total commission ",
              "Process Date", "Process Time", "Some Other Column"]
    r = row()
    r["Some Other Column"] = "ignored"
    line = only_line(run(csv_text([r], COLUMNS + ["Some Other Column"], header)))
    assert (line.member, line.retailer, line.sale_amount) == ("HP000012", "43245", 3980 * YEN)


def test_rakuten_missing_required_column_is_a_format_error_naming_it():
    columns = [c for c in COLUMNS if c != "Total Commission"]
    with pytest.raises(ReportFormatError) as exc:
        run(csv_text([row()], columns))
    assert (exc.value.errors[0].line, exc.value.errors[0].field, exc.value.errors[0].code) == (
        1, "Total Commission", "missing_column")


@pytest.mark.parametrize("field", ["MID", "Order ID", "Sales"])
def test_rakuten_missing_required_value_is_an_error_naming_it(field):
    assert codes(run(csv_text([row(**{field: ""})]))) == {(2, field, "missing_field")}


def test_rakuten_report_with_bom_and_crlf_and_japanese_names_parses():
    data = b"\xef\xbb\xbf" + csv_text([row()])
    assert only_line(run(data)).retailer == "43245"


def test_rakuten_line_that_is_not_utf8_is_reported_and_the_rest_parse():
    data = csv_text([row(), row(SKU="X")])
    data = data.replace("スタイルマーケット".encode(), "スタイルマーケット".encode("shift_jis"), 1)
    results = run(data)
    assert codes(results) == {(2, None, "invalid_utf8")}
    assert [r.line for r in lines(results)] == [3]


def test_rakuten_sample_fixture_parses_with_no_errors():
    results = run(FIXTURE.read_bytes())
    assert results and all(isinstance(r, ParsedLine) for r in results), codes(results)
    assert 10 <= len(results) <= 30
    ids = [r.transaction_id for r in results]
    assert len(set(ids)) == len(ids)
    assert any(i.endswith("|sale") for i in ids)
    assert any("|adjustment|" in i for i in ids)
    assert any("|deduction|" in i for i in ids)
    assert {r.status for r in results} == {"unstated", "confirmed"}
    assert all(r.currency == "JPY" for r in results)
    assert any(r.member == "HP999999" for r in results)
    assert {r.retailer for r in results} == {"43245", "38971"}
    for r in results:
        assert datetime.date(2026, 6, 1) <= r.event_date <= datetime.date(2026, 11, 20)
        assert r.member == "HP999999" or "HP000001" <= r.member <= "HP000800"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_rakuten_arbitrary_bytes_give_lines_errors_or_a_format_error_never_a_crash(data):
    header = csv_text([row()]).split(b"\r\n", 1)[0] + b"\r\n"
    for body in (data, header + data):
        try:
            for result in run(body):
                assert isinstance(result, (ParsedLine, LineError))
        except ReportFormatError as exc:
            assert exc.errors and all(e.code for e in exc.errors)


# --- what older and richer exports carry (issue 12) ---------------------------------------

LINKSHARE = ["Member ID", "Merchant ID", "Advertiser Name", "Order ID", "Transaction Date",
             "Transaction Time", "SKU Number", "Sales", "# of Items", "Commissions",
             "Process Date", "Process Time"]


def test_rakuten_older_linkshare_column_names_read_as_the_same_columns():
    data = csv_text([row(**{"Total Commission": "0.3995"})], COLUMNS, LINKSHARE)
    line = only_line(run(data, US))
    assert (line.member, line.retailer, line.commission_amount) == ("HP000012", "43245", 3995)
    assert line.transaction_id == "245117-20260604-0012045521|SM-TS-001-M|sale"


def test_rakuten_transaction_id_column_is_the_lines_identity_when_present():
    columns = COLUMNS + ["Transaction ID"]
    results = run(csv_text([row(**{"Transaction ID": "77730012"}),
                            row(SKU="B", **{"Transaction ID": ""})], columns))
    assert [r.transaction_id for r in lines(results)] == [
        "77730012", "245117-20260604-0012045521|B|sale"]


@pytest.mark.parametrize("u1", ["<none>", "", "  "])
def test_rakuten_none_or_empty_u1_means_no_member(u1):
    assert only_line(run(csv_text([row(**{"Member ID (U1)": u1})]))).member is None


def test_rakuten_two_digit_year_is_the_most_recent_past_year_never_the_future():
    old = only_line(run(csv_text([row(**{"Transaction Date": "10/17/80", "Process Date": ""})])))
    assert old.event_date == datetime.date(1980, 10, 17)
    recent = only_line(run(csv_text([row(**{"Transaction Date": "06/04/26",
                                            "Process Date": "06/05/26"})])))
    assert recent.event_date == datetime.date(2026, 6, 4)
    # A date later in the report's own year is refused as in the future, as it would be
    # written in full: the year is never moved back a century to make it fit.
    assert codes(run(csv_text([row(**{"Transaction Date": "12/01/26"})]))) == {
        (2, "Transaction Date", "future_date")}


# --- the Events API (JSON) ---------------------------------------------------------------

def event(**changes) -> dict:
    base = {"etransaction_id": "c8f6e1d04b7a", "advertiser_id": 43245, "sid": 3132713,
            "order_id": "245117-20260604-0012045521", "offer_id": "7201",
            "sku_number": "SM-TS-001-M", "sale_amount": 39.8, "quantity": 1,
            "commissions": 0.3995, "process_date": "Fri Jun 05 2026 03:10:00 GMT+0000 (UTC)",
            "transaction_date": "Thu Jun 04 2026 16:12:45 GMT+0000 (Coordinated Universal Time)",
            "transaction_type": "realtime", "product_name": "T-shirt", "u1": "HP000012",
            "currency": "USD", "is_event": "N"}
    base.update(changes)
    return base


def run_events(records, ctx: ParseContext = US) -> list:
    return list(rakuten.parse_json([json.dumps(records).encode()], ctx))


def test_rakuten_events_api_record_maps_like_a_report_line():
    line = only_line(run_events([event()]))
    assert line == ParsedLine(1, "c8f6e1d04b7a", "245117-20260604-0012045521", "HP000012",
                              "43245", None, datetime.date(2026, 6, 4), 398000, 3995, "USD",
                              "unstated", None)


def test_rakuten_events_api_date_is_converted_to_the_tenants_zone():
    tokyo = dataclasses.replace(US, zone=zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert only_line(run_events([event()], tokyo)).event_date == datetime.date(2026, 6, 5)


def test_rakuten_events_api_errors_name_the_apis_keys():
    results = run_events([event(commissions="0.39951", u1="<none>"), event(u1="<none>")])
    assert codes(results) == {(1, "commissions", "too_many_decimals")}
    assert lines(results)[0].member is None


_json_value = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                        st.text(max_size=20), st.lists(st.integers(), max_size=2),
                        st.sampled_from(["0.3995", "-1", "Thu Jun 04 2026 16:12:45 GMT+0000",
                                         "Fri Feb 30 2026 00:00:00 GMT+2500", "<none>"]))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(rakuten.EVENTS_KEYS.values())), _json_value))
def test_rakuten_events_api_any_values_give_a_line_or_errors_never_an_exception(changes):
    for result in run_events([event(**changes)]):
        assert isinstance(result, (ParsedLine, LineError))
