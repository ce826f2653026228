"""A corpus of hostile generic uploads (tests/hostile/): each yields a clear error naming line,
field and code, and the good lines of the same file still parse (nothing lost)."""
from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from settlement.reports.formats import LineError, ParseContext, ParsedLine, ReportFormatError
from settlement.reports.formats import generic

CTX = ParseContext("USD", 2, datetime.date(2026, 11, 24))
HOSTILE = Path(__file__).parents[1] / "hostile"
GOOD = ["T-1001", "T-1003"]
HUGE = b"@@HUGE@@"

# file -> (line, field, code) of the one error it must produce; None: no error at all.
LINE_CASES = {
    "bom.csv": None,
    "not_utf8.csv": (3, None, "invalid_utf8"),
    "nul_byte.csv": (3, None, "nul_byte"),
    "huge_field.csv": (3, None, "line_too_long"),
    "exponent.csv": (3, "sale_amount", "invalid_amount"),
    "nan.csv": (3, "commission_amount", "invalid_amount"),
    "infinity.csv": (3, "sale_amount", "invalid_amount"),
    "negative_zero.csv": (3, "commission_amount", "negative_zero"),
    "thousands_separator.csv": (3, "sale_amount", "invalid_amount"),
    "arabic_digits.csv": (3, "sale_amount", "invalid_amount"),
    "too_many_decimals.csv": (3, "commission_amount", "too_many_decimals"),
    "unknown_currency.csv": (3, "currency", "unknown_currency"),
    "future_date.csv": (3, "event_date", "future_date"),
    "not_a_date.csv": (3, "event_date", "invalid_date"),
    "unknown_status.csv": (3, "status", "unknown_status"),
    "negative_sale_positive_commission.csv": (3, "commission_amount", "sign_mismatch"),
}
# file -> (line, field, code) of the error that refuses the whole file.
FILE_CASES = {
    "missing_column.csv": (1, "status", "missing_column"),
    "unknown_column.csv": (1, "cashback_rate", "unknown_column"),
}


def load(name: str) -> bytes:
    data = (HOSTILE / name).read_bytes()
    if HUGE in data:  # a field of a megabyte, made here rather than committed
        data = data.replace(HUGE, b"x" * (1024 * 1024))
    return data


def chunked(data: bytes, size: int = 4096):
    return (data[i:i + size] for i in range(0, len(data), size))


def test_the_corpus_has_a_file_for_every_case_and_a_case_for_every_file():
    assert {p.name for p in HOSTILE.glob("*.csv")} == set(LINE_CASES) | set(FILE_CASES)


@pytest.mark.parametrize("name", sorted(LINE_CASES))
def test_hostile_line_is_reported_with_line_field_and_code_and_good_lines_still_parse(name):
    results = list(generic.parse_csv(chunked(load(name)), CTX))
    errors = [r for r in results if isinstance(r, LineError)]
    parsed = [r for r in results if isinstance(r, ParsedLine)]
    expected = LINE_CASES[name]
    assert [(e.line, e.field, e.code) for e in errors] == ([expected] if expected else [])
    assert all(e.message for e in errors)
    assert [p.transaction_id for p in parsed] == GOOD
    assert [p.line for p in parsed] == ([2, 3] if name == "bom.csv" else [2, 4])


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_hostile_header_refuses_the_whole_file_naming_line_field_and_code(name):
    parsed = []
    with pytest.raises(ReportFormatError) as exc:
        for result in generic.parse_csv(chunked(load(name)), CTX):
            parsed.append(result)
    assert parsed == []
    first = exc.value.errors[0]
    assert (first.line, first.field, first.code) == FILE_CASES[name]
    assert first.message


def test_huge_field_is_refused_before_it_is_decoded_even_in_one_chunk():
    results = list(generic.parse_csv([load("huge_field.csv")], CTX))
    assert [(e.line, e.code) for e in results if isinstance(e, LineError)] == [
        (3, "line_too_long")]


def test_long_field_within_a_line_limit_is_refused_by_name():
    data = load("exponent.csv").replace(b"T-1002", b"T" * 2000).replace(b"1e3", b"80.00")
    results = list(generic.parse_csv([data], CTX))
    assert [(e.line, e.field, e.code) for e in results if isinstance(e, LineError)] == [
        (3, "transaction_id", "too_long")]


def test_bom_split_across_chunks_is_still_accepted():
    data = load("bom.csv")
    results = list(generic.parse_csv(chunked(data, 1), CTX))
    assert [r.transaction_id for r in results] == GOOD


def test_overlong_line_is_refused_without_holding_it_in_memory():
    from settlement.reports.formats.fields import byte_lines
    body = [b"a,b\n"] + [b"x" * 65536] * 64 + [b"\nc,d\n"]  # a 4 MiB line between two short ones
    lines = list(byte_lines(body, max_line_bytes=1000))
    assert lines[0] == b"a,b\n" and lines[-1] == b"c,d\n"
    assert len(lines) == 3 and len(lines[1]) == 1001


def test_json_body_over_the_limit_is_refused_before_it_is_read_whole():
    from settlement.reports.formats.fields import load_json

    def endless():
        while True:
            yield b" " * 65536

    with pytest.raises(ReportFormatError) as info:
        load_json(endless(), max_bytes=1 << 20)
    assert info.value.errors[0].code == "too_large"
