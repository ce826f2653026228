"""The generic CSV parsed by PostgreSQL (reports/copy_csv.py) stages exactly the rows the
Python parser stages, and hands back every body it cannot vouch for line by line."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import text

from settlement.db import engine_for, tenant_session
from settlement.reports import bounds
from settlement.reports.copy_csv import stage_in_database
from settlement.reports.formats import generic
from settlement.reports.formats.base import ParseContext, ReportFormatError
from settlement.reports.staging import INCOMING_COLUMNS, stage

CTX = ParseContext("USD", 2, dt.date(2026, 11, 24))
ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "tests" / "hostile"
HEADER = ",".join(generic.COLUMNS)


@pytest.fixture(scope="module")
def pg(pg_url):
    return engine_for(pg_url)


def _incoming(session) -> list[tuple]:
    return [tuple(row) for row in session.execute(text(
        f"SELECT {', '.join(INCOMING_COLUMNS)} FROM incoming ORDER BY line, err_field"))]


def _python_rows(session, body: bytes, ctx: ParseContext = CTX):
    try:
        stage(session, generic.parse_csv([body], ctx))
    except ReportFormatError:
        return "refused"
    return _incoming(session)


def _database_rows(session, body: bytes, ctx: ParseContext = CTX, piece: int = 7):
    chunks = [body[i:i + piece] for i in range(0, len(body), piece)] or [b""]
    if not stage_in_database(session, chunks, ctx):
        return None
    return _incoming(session)


def _both(engine, body: bytes, ctx: ParseContext = CTX, piece: int = 7):
    with tenant_session(engine) as session:
        database = _database_rows(session, body, ctx, piece)
        python = _python_rows(session, body, ctx)
        session.rollback()
    return database, python


def _clean_lines(n: int) -> list[str]:
    return [f"T-{i},O-{i},RR{i:06d},macys,Home,2026-10-{1 + i % 28:02d},{i}.{i % 100:02d},"
            f"{i % 7}.50,USD,{('pending', 'confirmed', 'reversed')[i % 3]}" for i in range(n)]


def test_database_parser_stages_the_rows_python_stages_for_a_clean_file(pg):
    body = ("\n".join([HEADER] + _clean_lines(500)) + "\n").encode()
    database, python = _both(pg, body)
    assert database is not None and len(database) == 500
    assert database == python


@pytest.mark.parametrize("variant", ["bom", "crlf", "no_final_newline", "columns_reordered",
                                     "empty_optional_fields", "header_only", "jpy"])
def test_database_parser_agrees_with_python_on_clean_variants(pg, variant):
    lines, header, ctx = _clean_lines(20), HEADER, CTX
    if variant == "columns_reordered":
        order = list(reversed(generic.COLUMNS))
        header = ",".join(order)
        lines = [",".join(reversed(line.split(","))) for line in lines]
    if variant == "empty_optional_fields":
        lines = [line.replace(f"O-{i},RR{i:06d},", ",,").replace("Home", "")
                 for i, line in enumerate(lines)]
    if variant == "header_only":
        lines = []
    if variant == "jpy":
        ctx = ParseContext("JPY", 0, CTX.today)
        lines = [f"T-{i},,RR{i:06d},macys,,2026-10-01,{i * 100},{i},JPY,confirmed"
                 for i in range(20)]
    body = "\n".join([header] + lines) + ("" if variant == "no_final_newline" else "\n")
    if variant == "crlf":
        body = body.replace("\n", "\r\n")
    data = body.encode()
    if variant == "bom":
        data = b"\xef\xbb\xbf" + data
    database, python = _both(pg, data, ctx)
    assert database is not None
    assert database == python


@pytest.mark.parametrize("path", sorted(HOSTILE.glob("*.csv")), ids=lambda p: p.name)
def test_database_parser_hands_back_every_file_python_finds_fault_with(pg, path):
    data = path.read_bytes().replace(b"@@HUGE@@", b"x" * (1024 * 1024))
    database, python = _both(pg, data, piece=1 << 16)
    faulty = python == "refused" or any(row[-2] is not None for row in python)
    if faulty:
        assert database is None
    else:
        assert database == python


def test_network_precision_amounts_are_python_s_to_stage_in_ten_thousandths(pg):
    lines = _clean_lines(3) + ["T-9,O-9,RR9,macys,Home,2026-10-01,194.53,7.781,USD,pending"]
    database, python = _both(pg, ("\n".join([HEADER] + lines) + "\n").encode())
    assert database is None
    assert [(row[7], row[8]) for row in python][-1] == (1945300, 77810)


@pytest.mark.parametrize("line", [
    'T-9,O-9,RR9,macys,"Home, Garden",2026-10-01,1.00,0.10,USD,pending',  # quotes
    "\\.",                                   # the COPY end-of-data marker
    "",                                      # a blank line
    "T-9,O-9,RR9,macys,Home,2026-10-01,1.00,0.10,USD,pending,extra",
    "T-9,O-9,RR9,macys,Home,2026-10-01,1.00,0.10,USD",
    "T-9,O-9,RR9,macys,Home,2026-10-01,1.00,0.10,USD,pending\r",  # mixed line endings
    "T-9,O-9,RR9,macys,Caf\u00e9,2026-10-01,1.00,0.10,USD,pending",  # non-ASCII category
    "T-9 ,O-9,RR9,macys,Home,2026-10-01,1.00,0.10,USD,pending",  # whitespace to strip
    "T.9,O-9,RR9,macys,Home,2026-10-01,1.00,0.10,USD,pending",  # a point outside amounts
    "T-9,O-9,RR9,macys,Home,2026-10-01,1,0.10,USD,pending",  # an amount without decimals
    "T-9,O-9,RR9,macys,Home,2026-02-30,1.00,0.10,USD,pending",  # no such day
    "T-1,O-9,RR9,macys,Home,2026-10-01,1.00,0.10,USD,pending",  # a repeated id is fine
])
def test_database_parser_hands_back_lines_only_python_can_explain(pg, line):
    lines = _clean_lines(3)
    body = ("\n".join([HEADER, lines[0], line, lines[1], lines[2]]) + "\n").encode()
    database, python = _both(pg, body)
    if database is not None:  # taken: then exactly as Python reads it
        assert database == python
    if line.startswith("T-1,"):
        assert database is not None
    else:
        assert database is None


_value = st.one_of(
    st.sampled_from(["10.00", "-1.50", "0.00", "-0.00", "-0", "1e3", "10.5", "10.001", "007.50",
                     "7.781", "0.3995", "-51.826", "1.00000", "1.00001", "-0.0000",
                     "1234567890123.00", "123456789012", "2026-10-01", "2026-02-29",
                     "2024-02-29", "2026-13-01", "0000-01-01", "2026-W40-1", "20261001",
                     "2027-01-01", "2026-11-24", "2026-11-25", "usd", "USD", "JPY", "pending",
                     "Pending", "confirmed", "reversed", " x ", "", "a" * 200, "\u00a0x",
                     "x\u00a0", "caf\u00e9", "\u0661\u0662", "NaN", "Infinity"]),
    st.text(alphabet="0123456789.-Ee xX", max_size=8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_value, min_size=10, max_size=10), min_size=1, max_size=4))
def test_database_parser_never_takes_a_line_python_refuses(pg, rows):
    body = ("\n".join([HEADER] + [",".join(row) for row in rows]) + "\n").encode()
    database, python = _both(pg, body, piece=1 << 16)
    if database is not None:
        assert python != "refused" and all(row[-2] is None for row in python)
        assert database == python


@pytest.mark.parametrize("lines, handed_back", [(1000, False), (1001, True)])
def test_a_clean_file_past_the_report_total_is_handed_to_python_which_refuses_it_whole(
        pg, lines, handed_back):
    # 999,999,999.99 is the largest amount the expression lets through; a thousand of them
    # stay under a trillion (bounds.MAX_REPORT_AMOUNT), 1,001 pass it.
    rows = [f"T-{i},O-{i},RR{i:06d},macys,Home,2026-10-01,999999999.99,1.00,USD,pending"
            for i in range(lines)]
    body = ("\n".join([HEADER] + rows) + "\n").encode()
    with tenant_session(pg) as session:
        database = _database_rows(session, body, piece=1 << 16)
        assert (database is None) is handed_back
        if handed_back:
            with pytest.raises(ReportFormatError) as refused:
                stage(session, bounds.checked(generic.parse_csv([body], CTX), "generic"))
            assert [e.code for e in refused.value.errors] == ["report_total_too_large"]
        else:
            assert len(database) == lines
        session.rollback()

