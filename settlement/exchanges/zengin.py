"""Zengin (全銀) comprehensive transfer files (総合振込, type code 21): fixed-width records of
120 bytes in JIS X 0201 (half-width katakana, upper-case Latin, digits), CRLF between them.

    1 header   data type, type code 21, code set 0, client code, client name, transfer
               date MMDD, the originating bank, branch, account
    2 data     one per transfer: beneficiary bank and branch codes, account type and
               number, name (half-width katakana), amount, customer code (our exchange id)
    8 trailer  count and total of the data records
    9 end

Bank and branch names are optional in the format and left blank: the codes decide.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from settlement.exchanges.kana import to_zengin_name
from settlement.exchanges.policy import Originator
from settlement.exchanges.quote import ACCOUNT_TYPES

RECORD = 120
ENCODING = "cp932"  # half-width katakana are single bytes, as in JIS X 0201


@dataclass(frozen=True)
class Transfer:
    reference: int  # our exchange id, in customer code 1
    bank_code: str
    branch_code: str
    account_type: str  # ordinary | current | savings
    account_number: str
    account_name: str
    amount: int  # yen


def _field(text: str, width: int) -> str:
    if len(text.encode(ENCODING)) > width:
        raise ValueError(f"{text!r} does not fit {width} bytes")
    return text + " " * (width - len(text.encode(ENCODING)))


def _number(value: int, width: int) -> str:
    if not 0 <= value < 10 ** width:
        raise ValueError(f"{value} does not fit {width} digits")
    return str(value).zfill(width)


def _record(*parts: str) -> bytes:
    raw = "".join(parts).encode(ENCODING)
    if len(raw) != RECORD:
        raise ValueError(f"a record of {len(raw)} bytes, not {RECORD}")
    return raw


def write_file(originator: Originator, transfer_date: dt.date,
               transfers: list[Transfer]) -> bytes:
    header = _record("1", "21", "0", originator.client_code,
                     _field(to_zengin_name(originator.name, 40), 40),
                     transfer_date.strftime("%m%d"), originator.bank_code, _field("", 15),
                     originator.branch_code, _field("", 15),
                     ACCOUNT_TYPES[originator.account_type], originator.account_number,
                     _field("", 17))
    data = [_record("2", t.bank_code, _field("", 15), t.branch_code, _field("", 15),
                    _field("", 4), ACCOUNT_TYPES[t.account_type], t.account_number,
                    _field(to_zengin_name(t.account_name), 30), _number(t.amount, 10), "0",
                    _number(t.reference, 10), _field("", 10), " ", " ", _field("", 7))
            for t in transfers]
    trailer = _record("8", _number(len(transfers), 6),
                      _number(sum(t.amount for t in transfers), 12), _field("", 101))
    end = _record("9", _field("", 119))
    return b"\r\n".join([header, *data, trailer, end]) + b"\r\n"


# (name, width) of each record kind, in order: what `parse_file` reads back.
LAYOUT = {
    "1": [("kind", 1), ("type_code", 2), ("code_set", 1), ("client_code", 10),
          ("client_name", 40), ("transfer_date", 4), ("bank_code", 4), ("bank_name", 15),
          ("branch_code", 3), ("branch_name", 15), ("account_type", 1),
          ("account_number", 7), ("dummy", 17)],
    "2": [("kind", 1), ("bank_code", 4), ("bank_name", 15), ("branch_code", 3),
          ("branch_name", 15), ("clearing_house", 4), ("account_type", 1),
          ("account_number", 7), ("account_name", 30), ("amount", 10), ("new_code", 1),
          ("customer_code1", 10), ("customer_code2", 10), ("transfer_kind", 1),
          ("identification", 1), ("dummy", 7)],
    "8": [("kind", 1), ("count", 6), ("total", 12), ("dummy", 101)],
    "9": [("kind", 1), ("dummy", 119)],
}


def parse_record(raw: bytes) -> dict[str, str]:
    if len(raw) != RECORD:
        raise ValueError(f"a record of {len(raw)} bytes, not {RECORD}")
    layout = LAYOUT.get(raw[:1].decode("ascii"))
    if layout is None:
        raise ValueError(f"unknown record kind {raw[:1]!r}")
    out, at = {}, 0
    for name, width in layout:
        out[name] = raw[at:at + width].decode(ENCODING)
        at += width
    return out


def parse_file(raw: bytes) -> list[dict[str, str]]:
    lines = raw.split(b"\r\n")
    if lines[-1] != b"":
        raise ValueError("the file does not end with CRLF")
    return [parse_record(line) for line in lines[:-1]]


# -- the bank's return notice -------------------------------------------------------------
#
# A transfer can come back after its date: the receiving bank finds no such account, a
# name that differs or a closed account (振込不能), or the transfer is recalled (組戻し). The
# 全銀協 standard has no 総合振込 return file of its own; banks that send one as data (a
# 振込不能明細 / 組戻し結果 file of their EB service) send our own records back in the
# 総合振込 layout above: header (type 21, our client code and transfer date), one data
# record per returned transfer as we wrote it (the customer code is our exchange id),
# trailer (count and total of the returns), end. Where the data record's last 7 bytes are
# blank in ours, the notice writes the result: a 1-byte code, as the 口座振替 result files
# code their 振替結果コード, and the return date MMDD, then 2 blanks.
RETURN_REASONS = {
    "1": "no such account (口座なし)",
    "2": "the account name differs (名義相違)",
    "3": "the account is closed (解約済)",
    "4": "the transfer was recalled (組戻し)",
    "9": "returned by the bank (その他)",
}


class NoticeError(ValueError):
    """A return notice that cannot be taken: refused whole, naming the line and field."""

    def __init__(self, line: int, field: str, message: str):
        super().__init__(f"line {line}, {field}: {message}")
        self.line, self.field, self.message = line, field, message


@dataclass(frozen=True)
class Returned:
    line: int
    reference: int  # customer code 1: our exchange id
    bank_code: str
    branch_code: str
    account_number: str
    amount: int
    reason: str
    returned_mmdd: str


def _digits(line: int, record: dict[str, str], field: str) -> int:
    value = record[field]
    if not value.isdigit():
        raise NoticeError(line, field, f"{value.strip()!r} is not a number")
    return int(value)


def _records(raw: bytes) -> list[tuple[int, dict[str, str]]]:
    lines = raw.split(b"\r\n")
    if lines[-1] != b"":
        raise NoticeError(len(lines), "record", "the file does not end with CRLF")
    out = []
    for n, line in enumerate(lines[:-1], start=1):
        try:
            out.append((n, parse_record(line)))
        except (ValueError, UnicodeDecodeError) as exc:
            raise NoticeError(n, "record", str(exc)) from None
    kinds = "".join(record["kind"] for _, record in out)
    if len(kinds) < 4 or kinds[0] != "1" or kinds[-2:] != "89" or set(kinds[1:-2]) != {"2"}:
        raise NoticeError(1, "kind", "records must be header 1, data 2 (one or more), "
                          f"trailer 8, end 9; found {kinds[:20]!r}")
    return out


def read_return_notice(raw: bytes) -> tuple[dict[str, str], list[Returned]]:
    """The header and the returned transfers of a notice, every field checked."""
    records = _records(raw)
    header = records[0][1]
    if header["type_code"] != "21":
        raise NoticeError(1, "type_code", f"{header['type_code']!r} is not 21 (総合振込)")
    returned = []
    for line, record in records[1:-2]:
        code, mmdd = record["dummy"][0], record["dummy"][1:5]
        if code not in RETURN_REASONS:
            raise NoticeError(line, "result_code", f"{code!r} is not one of "
                              f"{', '.join(RETURN_REASONS)}")
        if not mmdd.isdigit():
            raise NoticeError(line, "returned_on", f"{mmdd!r} is not a date MMDD")
        returned.append(Returned(
            line=line, reference=_digits(line, record, "customer_code1"),
            bank_code=record["bank_code"], branch_code=record["branch_code"],
            account_number=record["account_number"], amount=_digits(line, record, "amount"),
            reason=RETURN_REASONS[code], returned_mmdd=mmdd))
    line, trailer = records[-2]
    if (_digits(line, trailer, "count"), _digits(line, trailer, "total")) != (
            len(returned), sum(r.amount for r in returned)):
        raise NoticeError(line, "count", f"the trailer says {int(trailer['count'])} returns "
                          f"of {int(trailer['total'])} yen; the data records are "
                          f"{len(returned)} of {sum(r.amount for r in returned)}")
    if len({r.reference for r in returned}) != len(returned):
        raise NoticeError(1, "customer_code1", "a transfer is returned twice in one notice")
    return header, returned
