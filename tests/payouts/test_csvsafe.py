"""csvsafe: formula injection neutralised, numbers kept numeric, files written atomically."""
from __future__ import annotations

import csv
import io
import os
from decimal import Decimal

import pytest

from settlement.payouts import csvsafe
from settlement.payouts.csvsafe import (
    CsvFormatError, FileConflictError, amount, cell, numeric, read_csv, render_csv,
    safe_file_name, uncell, write_csv_atomic,
)


def _rows(path):
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))


@pytest.mark.parametrize("payee", [
    '=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1:A2)",
    "\t=1+1", "\r=1+1", "\n=1", "\uff1d1+1", "-12.50",
])
def test_formula_looking_payee_names_are_neutralised_with_a_leading_quote(payee):
    assert cell(payee) == "'" + payee


@pytest.mark.parametrize("text", ["Alice Smith", "O'Brien", "12 Main St", "", "a=b", "Zoë"])
def test_ordinary_text_is_left_as_it_is(text):
    assert cell(text) == text


def test_none_is_an_empty_cell():
    assert cell(None) == ""


def test_negative_amounts_we_format_stay_numbers_while_the_same_text_is_neutralised():
    assert cell(amount(-1250, 2)) == "-12.50"
    assert cell(numeric(-7)) == "-7"
    assert cell(-7) == "-7"
    assert cell(Decimal("-3.10")) == "-3.10"
    assert cell("-12.50") == "'-12.50"  # untrusted text that merely looks like a number


def test_amount_uses_the_currencys_minor_digits():
    assert amount(123456, 2) == "1234.56"
    assert amount(-5, 2) == "-0.05"
    assert amount(500, 0) == "500"


@pytest.mark.parametrize("text", ["=1+1", "1e5", "-", "12,50", " 12", "NaN", "+1", "١٢"])
def test_numeric_refuses_anything_but_a_plain_decimal(text):
    with pytest.raises(ValueError):
        numeric(text)


def test_numeric_refuses_booleans_and_infinite_decimals():
    with pytest.raises(ValueError):
        numeric(True)
    with pytest.raises(ValueError):
        numeric(Decimal("Infinity"))


def test_neutralising_twice_changes_nothing_and_uncell_restores_the_text():
    once = cell("=cmd")
    assert cell(once) == once
    assert uncell(once) == "=cmd"
    assert uncell("'quoted on purpose") == "'quoted on purpose"
    assert uncell("plain") == "plain"


def test_written_file_neutralises_every_text_cell_but_keeps_negative_amounts_numeric(tmp_path):
    path = tmp_path / "out.csv"
    write_csv_atomic(path, ["payee", "amount", "count"],
                     [["=HYPERLINK(\"x\")", amount(-1250, 2), 3],
                      ['Smith, "Jr"', amount(1250, 2), -1]])
    assert _rows(path) == [["payee", "amount", "count"],
                           ["'=HYPERLINK(\"x\")", "-12.50", "3"],
                           ['Smith, "Jr"', "12.50", "-1"]]


def test_written_file_is_utf8_without_bom_with_crlf_line_ends(tmp_path):
    path = tmp_path / "out.csv"
    write_csv_atomic(path, ["name"], [["Zoë"]])
    assert path.read_bytes() == "name\r\nZoë\r\n".encode("utf-8")


def test_a_row_with_the_wrong_number_of_cells_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "out.csv"
    with pytest.raises(ValueError, match="row 2"):
        write_csv_atomic(path, ["a", "b"], [["1", "2"], ["1"]])
    assert not path.exists()


def test_write_is_atomic_a_failed_replace_keeps_the_old_file_and_leaves_no_temp_file(
        tmp_path, monkeypatch):
    path = tmp_path / "out.csv"
    write_csv_atomic(path, ["a"], [["old"]])
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(csvsafe.os, "replace", crash)
    with pytest.raises(OSError):
        write_csv_atomic(path, ["a"], [["new"]])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_write_goes_through_a_temp_file_in_the_same_folder_fsynced_before_the_rename(
        tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync")
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.dirname(src), os.path.basename(src)))
        real_replace(src, dst)

    monkeypatch.setattr(csvsafe.os, "fsync", fsync)
    monkeypatch.setattr(csvsafe.os, "replace", replace)
    path = tmp_path / "sub" / "out.csv"
    assert write_csv_atomic(path, ["a"], [["1"]]) is True
    assert events[0] == "fsync"  # the file's data, before the rename
    kind, folder, tmp_name = events[1]
    assert kind == "replace" and folder == str(path.parent) and tmp_name.startswith(".out.csv.")
    assert events[2:] == ["fsync"]  # the folder, after it
    assert path.read_bytes() == b"a\r\n1\r\n"


def test_identical_rewrite_leaves_the_file_untouched(tmp_path):
    path = tmp_path / "out.csv"
    assert write_csv_atomic(path, ["a"], [["1"]]) is True
    stat = path.stat()
    assert write_csv_atomic(path, ["a"], [["1"]]) is False
    again = path.stat()
    assert (again.st_ino, again.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)


def test_different_content_is_refused_when_replacing_is_not_allowed(tmp_path):
    path = tmp_path / "out.csv"
    write_csv_atomic(path, ["a"], [["1"]])
    with pytest.raises(FileConflictError):
        write_csv_atomic(path, ["a"], [["2"]], replace_different=False)
    assert path.read_bytes() == b"a\r\n1\r\n"
    assert write_csv_atomic(path, ["a"], [["2"]]) is True  # the default replaces


def test_files_are_private_to_the_owner_by_default(tmp_path):
    path = tmp_path / "out.csv"
    write_csv_atomic(path, ["a"], [])
    assert path.stat().st_mode & 0o777 == 0o600


def test_render_is_deterministic():
    rows = [["x", amount(1, 2)]]
    assert render_csv(["a", "b"], rows) == render_csv(["a", "b"], rows)


def test_read_csv_skips_blank_lines_and_a_bom_and_numbers_physical_lines(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b'\xef\xbb\xbfa,b\r\n\r\n"multi\nline",2\r\nz,3\r\n')
    assert read_csv(path) == [(1, ["a", "b"]), (3, ["multi\nline", "2"]), (5, ["z", "3"])]


def test_read_csv_names_the_line_of_invalid_utf8(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"a\r\nok\r\nbad \xff\r\n")
    with pytest.raises(CsvFormatError) as info:
        read_csv(path)
    assert info.value.line == 3


def test_read_csv_names_the_line_of_broken_quoting(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b'a,b\r\n1,2\r\n"x"y,3\r\n')
    with pytest.raises(CsvFormatError) as info:
        read_csv(path)
    assert info.value.line == 3


@pytest.mark.parametrize("name", ["../x.csv", "a/b.csv", ".hidden", "", "a..b", "x\n.csv"])
def test_unsafe_file_names_are_refused(name):
    with pytest.raises(ValueError):
        safe_file_name(name)


def test_plain_file_names_are_accepted():
    assert safe_file_name("checks-t1-r5-check-1.csv") == "checks-t1-r5-check-1.csv"
