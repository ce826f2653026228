"""The generic CSV fast path and the careful path accept and refuse exactly the same lines."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from settlement.reports.formats import generic
from settlement.reports.formats.base import ParseContext, ReportFormatError

CTX = ParseContext("USD", 2, dt.date(2026, 11, 24))
ROOT = Path(__file__).resolve().parents[2]


def _both(body: bytes, monkeypatch):
    def run():
        try:
            return list(generic.parse_csv([body], CTX))
        except ReportFormatError as exc:
            return ("refused", exc.errors)
    fast = run()
    with monkeypatch.context() as m:
        m.setattr(generic, "_fast_path", lambda header, ctx: None)
        careful = run()
    return fast, careful


@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "hostile").glob("*.csv"))
                         + [ROOT / "fixtures" / "us-cashback" / "generic_report.csv"],
                         ids=lambda p: p.name)
def test_fast_path_gives_the_same_result_as_the_careful_path(path, monkeypatch):
    fast, careful = _both(path.read_bytes(), monkeypatch)
    assert fast == careful


field = st.one_of(st.sampled_from(["10.00", "-1.50", "0.00", "-0.00", "1e3", "10.5", "10.001",
                                   "2026-10-01", "2026-W40-1", "20261001", "2027-01-01", "usd",
                                   "USD", "pending", "Pending", " x ", "", "a" * 200]),
                  st.text(alphabet="0123456789.-Ee ,", max_size=8))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(field, field, field, field, field), min_size=1, max_size=5))
def test_fast_path_agrees_on_arbitrary_values(rows):
    body = [",".join(generic.COLUMNS)]
    for i, (date, sale, commission, currency, status) in enumerate(rows):
        body.append(f"t{i},o,m,macys,cat,{date},{sale},{commission},{currency},{status}")
    data = ("\n".join(body) + "\n").encode()
    fast = list(generic.parse_csv([data], CTX))
    original = generic._fast_path
    try:
        generic._fast_path = lambda header, ctx: None
        careful = list(generic.parse_csv([data], CTX))
    finally:
        generic._fast_path = original
    assert fast == careful
