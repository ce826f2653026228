"""Impact Actions: JSON, NDJSON and CSV with the same column names."""
from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.reports.formats import LineError, ParseContext, ParsedLine, ReportFormatError
from settlement.reports.formats import impact, parser_for

CTX = ParseContext("USD", 2, datetime.date(2026, 11, 24))
FIXTURE = (Path(__file__).parents[2] / "fixtures" / "reports" / "us-cashback"
           / "impact_actions.json")
RAW = "@@RAW@@"
HEADER = "Id,Oid,SubId1,CampaignId,EventDate,Amount,Payout,Currency,State"


def action(**changes) -> dict:
    base = {
        "Id": "7721.4309.1182034", "CampaignId": "7721", "CampaignName": "Sephora",
        "ActionTrackerName": "Online Sale", "State": "APPROVED", "Payout": "4.30",
        "DeltaPayout": "4.30", "Amount": "86.00", "DeltaAmount": "86.00", "Currency": "USD",
        "EventDate": "2026-06-06T11:32:08-07:00", "Oid": "SEPH-40021877", "SubId1": "RR000121",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def body(doc, raw: str | None = None) -> bytes:
    text = json.dumps(doc)
    if raw is not None:
        text = text.replace(json.dumps(RAW), raw)
    return text.encode()


def run(data: bytes, media: str = "json", ctx: ParseContext = CTX) -> list:
    return list(impact.PARSERS[media]([data], ctx))


def one(rec: dict, ctx: ParseContext = CTX, raw: str | None = None):
    return run(body([rec], raw), ctx=ctx)


def only_line(results) -> ParsedLine:
    assert len(results) == 1 and isinstance(results[0], ParsedLine), results
    return results[0]


def codes(results) -> set[tuple]:
    return {(e.line, e.field, e.code) for e in results if isinstance(e, LineError)}


def test_impact_is_registered_for_csv_json_and_ndjson():
    assert parser_for("impact", "csv") is impact.parse_csv
    assert parser_for("impact", "json") is impact.parse_json
    assert parser_for("impact", "ndjson") is impact.parse_ndjson


def test_impact_action_maps_every_field_to_the_parsed_line():
    assert only_line(one(action())) == ParsedLine(
        1, "7721.4309.1182034", "SEPH-40021877", "RR000121", "7721", None,
        datetime.date(2026, 6, 6), 860000, 43000, "USD", "confirmed", None)


@pytest.mark.parametrize("state,status", [
    ("PENDING", "pending"), ("APPROVED", "confirmed"), ("REVERSED", "reversed"),
    ("approved", "confirmed"), ("Reversed", "reversed"),
])
def test_impact_state_maps_to_status(state, status):
    assert only_line(one(action(State=state))).status == status


@pytest.mark.parametrize("state", ["LOCKED", "CLEARED", "DECLINED", "pending?"])
def test_impact_unknown_state_is_an_error_naming_line_and_field(state):
    results = run(body([action(), action(State=state)]))
    assert isinstance(results[0], ParsedLine)
    assert codes(results) == {(2, "State", "unknown_status")}


def test_impact_amounts_are_the_absolute_values_and_deltas_are_ignored():
    line = only_line(one(action(Amount="60.00", Payout="3.00", DeltaAmount="-26.00",
                                DeltaPayout="-1.30")))
    assert (line.sale_amount, line.commission_amount) == (600000, 30000)
    line = only_line(one(action(DeltaAmount="garbage", DeltaPayout=None)))
    assert (line.sale_amount, line.commission_amount) == (860000, 43000)


def test_impact_category_and_action_tracker_name_are_ignored():
    line = only_line(one(action(Category="Fragrance", ActionTrackerName="x" * 5000)))
    assert line.category is None


@pytest.mark.parametrize("literal,units", [("86", 860000), ("86.5", 865000), ("0.07", 700),
                                           ("999999999999.99", 9999999999999900),
                                           ("32252.1922", 322521922)])
def test_impact_json_number_amount_is_parsed_exactly_without_float(literal, units):
    assert only_line(one(action(Amount=RAW), raw=literal)).sale_amount == units


@pytest.mark.parametrize("raw,code", [
    ("1e3", "invalid_amount"), ('"1e3"', "invalid_amount"), ('"NaN"', "invalid_amount"),
    ('"Infinity"', "invalid_amount"), ('"1,234.56"', "invalid_amount"),
    ('"١٢٣"', "invalid_amount"), ('"4.30512"', "too_many_decimals"),
    ("4.30501", "too_many_decimals"), ('"-0.00"', "negative_zero"), ('""', "missing_field"),
])
def test_impact_hostile_payout_is_rejected_naming_line_and_field(raw, code):
    results = run(body([action(), action(Payout=RAW)], raw))
    assert isinstance(results[0], ParsedLine)
    assert codes(results) == {(2, "Payout", code)}


def test_impact_wrong_currency_is_an_error_naming_the_currency_field():
    assert codes(one(action(Currency="EUR"))) == {(1, "Currency", "wrong_currency")}
    assert only_line(one(action(Currency="usd"))).currency == "USD"


@pytest.mark.parametrize("field", ["Id", "CampaignId", "EventDate", "Amount", "Payout",
                                   "Currency", "State"])
def test_impact_missing_required_field_is_an_error_naming_it(field):
    assert codes(one(action(**{field: ...}))) == {(1, field, "missing_field")}


def test_impact_order_and_member_are_optional_and_unknown_members_parse():
    line = only_line(one(action(Oid=..., SubId1="")))
    assert (line.order_id, line.member) == (None, None)
    assert only_line(one(action(SubId1="RR999999"))).member == "RR999999"


def test_impact_negative_amount_with_positive_payout_is_refused():
    assert codes(one(action(Amount="-86.00"))) == {(1, "Payout", "sign_mismatch")}


def test_impact_invalid_and_future_event_dates_are_refused():
    assert codes(one(action(EventDate="06/06/2026"))) == {(1, "EventDate", "invalid_date")}
    assert codes(one(action(EventDate="2026-12-01T00:00:00Z"))) == {
        (1, "EventDate", "future_date")}


@pytest.mark.parametrize("doc", [lambda a: a, lambda a: {"@page": "1", "Actions": a}])
def test_impact_accepts_bare_array_and_actions_envelope(doc):
    results = run(body(doc([action(), action(Id="2")])))
    assert [r.transaction_id for r in results] == ["7721.4309.1182034", "2"]


def test_impact_object_without_actions_is_a_format_error():
    with pytest.raises(ReportFormatError) as exc:
        run(body({"@page": "1", "Records": [action()]}))
    assert exc.value.errors[0].code == "invalid_json"


def test_impact_ndjson_errors_carry_physical_line_numbers():
    data = "\n".join([json.dumps(action()), "", json.dumps(action(Id="2", State="PAID")),
                      json.dumps(action(Id="3"))]).encode()
    results = run(data, "ndjson")
    assert [r.line for r in results if isinstance(r, ParsedLine)] == [1, 4]
    assert codes(results) == {(3, "State", "unknown_status")}


def csv_body(*rows: str, header: str = HEADER) -> bytes:
    return ("\r\n".join((header,) + rows) + "\r\n").encode()


GOOD_ROW = ("7721.4309.1182034,SEPH-40021877,RR000121,7721,2026-06-06T11:32:08-07:00,"
            "86.00,4.30,USD,APPROVED")


def test_impact_csv_uses_the_same_column_names():
    results = run(csv_body(GOOD_ROW), "csv")
    assert results == [ParsedLine(2, "7721.4309.1182034", "SEPH-40021877", "RR000121", "7721",
                                  None, datetime.date(2026, 6, 6), 860000, 43000, "USD",
                                  "confirmed", None)]


def test_impact_csv_header_ignores_case_spacing_order_and_extra_columns():
    header = " state , CAMPAIGNID,Id,ActionTrackerName,EventDate,Amount,Payout,Currency,DeltaPayout"
    row = "PENDING,9915,9915.1,Online Sale,2026-07-01T10:00:00Z,10.00,0.70,USD,0.70"
    line = run(csv_body(row, header=header), "csv")[0]
    assert (line.transaction_id, line.retailer, line.status, line.member) == (
        "9915.1", "9915", "pending", None)


def test_impact_csv_missing_column_is_a_format_error_naming_it():
    with pytest.raises(ReportFormatError) as exc:
        run(csv_body("1,7721,2026-06-06,86.00,4.30,USD",
                     header="Id,CampaignId,EventDate,Amount,Payout,Currency"), "csv")
    assert (exc.value.errors[0].line, exc.value.errors[0].field,
            exc.value.errors[0].code) == (1, "State", "missing_column")


def test_impact_csv_duplicate_column_is_a_format_error():
    with pytest.raises(ReportFormatError) as exc:
        run(csv_body(GOOD_ROW + ",X", header=HEADER + ",state"), "csv")
    assert exc.value.errors[0].code == "duplicate_column"


def test_impact_csv_bad_lines_are_reported_with_their_line_and_the_rest_parse():
    rows = [GOOD_ROW,
            "2,O2,RR000002,7721,2026-06-07,\"1,234.56\",4.30,USD,APPROVED",
            "3,O3,RR000003,7721,2026-06-07,10.00,0.50,USD",
            GOOD_ROW.replace("7721.4309.1182034", "4")]
    results = run(csv_body(*rows), "csv")
    assert [r.transaction_id for r in results if isinstance(r, ParsedLine)] == [
        "7721.4309.1182034", "4"]
    assert codes(results) == {(3, "Amount", "invalid_amount"), (4, None, "wrong_column_count")}


def test_impact_csv_with_bom_and_no_header_is_handled():
    assert len(run(b"\xef\xbb\xbf" + csv_body(GOOD_ROW), "csv")) == 1
    with pytest.raises(ReportFormatError) as exc:
        run(b"", "csv")
    assert exc.value.errors[0].code == "missing_header"


def test_impact_sample_fixture_parses_with_no_errors():
    results = run(FIXTURE.read_bytes())
    assert results and all(isinstance(r, ParsedLine) for r in results), codes(results)
    assert 10 <= len(results) <= 30
    assert {r.status for r in results} == {"pending", "confirmed", "reversed"}
    assert any(r.member == "RR999999" for r in results)
    assert {r.retailer for r in results} == {"7721", "9915"}
    for r in results:
        assert datetime.date(2026, 6, 1) <= r.event_date <= datetime.date(2026, 11, 20)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=9, max_size=9))
def test_impact_csv_any_cell_values_give_a_line_or_errors_never_an_exception(cells):
    row = ",".join('"' + c.replace('"', '""') + '"' for c in cells)
    for result in run(csv_body(row), "csv"):
        assert isinstance(result, (ParsedLine, LineError))


def test_impact_member_comes_from_the_field_the_tenant_chose():
    shared = dataclasses.replace(CTX, member_field="SharedId")
    rec = action(SubId1="campaign-7", SharedId="RR000555")
    assert only_line(one(rec, shared)).member == "RR000555"
    assert only_line(one(rec)).member == "campaign-7"
    assert codes(one(action(SharedId="x" * 200), shared)) == {(1, "SharedId", "too_long")}


def test_impact_csv_reads_the_chosen_member_column():
    header = "Id,SubId1,SubId2,CampaignId,EventDate,Amount,Payout,Currency,State"
    row = "9915.1,tracker,RR000121,9915,2026-07-01T10:00:00Z,10.00,0.7021,USD,PENDING"
    ctx = dataclasses.replace(CTX, member_field="SubId2")
    line = run(csv_body(row, header=header), "csv", ctx)[0]
    assert (line.member, line.commission_amount) == ("RR000121", 7021)
