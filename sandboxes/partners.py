"""A local points-partner sandbox (Amex Membership Rewards, Bilt) for the demo and tests.

It plays the partner's side of the file exchange in ``settlement/payouts/points.py``: it
reads our ``<partner>-transfer-<key>.csv`` and writes the partner's
``<partner>-response-<key>.csv`` (``reference, status, reason``) next to it, atomically.

Outcomes are scripted by the member account, so tests and the demo can choose them: by
default an account ending in ``X`` or ``0000`` is REJECTED with reason "account closed",
any other is ACCEPTED. ``respond(..., reject=f)`` replaces that rule: ``f(row)`` gets the
transfer row as a dict (``reference, member_account, points, member_external_id,
payout_date``) and returns a rejection reason, or None to accept.

The bank's side of a Zengin transfer file: ``return_transfers(file, {exchange id: code},
day)`` writes the bank's return notice (``bank-returns-<batch key>-<MMDD>.txt``, the layout
in ``settlement/exchanges/zengin.py``) for transfers that came back, next to our file.

Command line: ``python -m sandboxes.partners --outbox DIR`` answers every
transfer file under DIR (searched recursively) that has no response yet.

A test/demo tool: settlement's domain code never imports it.
"""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Callable

from settlement.exchanges import zengin
from settlement.payouts.csvsafe import read_csv, uncell, write_bytes_atomic, write_csv_atomic
from settlement.payouts.points import (
    ACCEPTED, REJECTED, RESPONSE_COLUMNS, TRANSFER_COLUMNS, response_file_name,
    transfer_file_name,
)

Reject = Callable[[dict], "str | None"]

_TRANSFER = "-transfer-"


def default_reject(row: dict) -> str | None:
    account = (row.get("member_account") or "").strip()
    if account.upper().endswith("X") or account.endswith("0000"):
        return "account closed"
    return None


def respond(outbox: str | Path, partner: str, idempotency_key: str,
            reject: Reject = default_reject) -> Path:
    """Answer our transfer file with a response file; returns the response's path."""
    outbox = Path(outbox)
    transfer = outbox / transfer_file_name(partner, idempotency_key)
    records = read_csv(transfer)
    if not records or tuple(records[0][1]) != TRANSFER_COLUMNS:
        raise ValueError(f"{transfer.name} is not a transfer file (header {TRANSFER_COLUMNS})")
    rows = []
    for _, cells in records[1:]:
        row = {name: uncell(value) for name, value in zip(TRANSFER_COLUMNS, cells)}
        reason = reject(row)
        if reason:
            rows.append((row["reference"], REJECTED, str(reason)))
        else:
            rows.append((row["reference"], ACCEPTED, ""))
    response = outbox / response_file_name(partner, idempotency_key)
    write_csv_atomic(response, RESPONSE_COLUMNS, rows)
    return response


def return_transfers(transfer_file: str | Path, codes: dict[int, str],
                     returned_on: dt.date) -> Path:
    """The bank's notice that the transfers `codes` names (exchange id: result code of
    zengin.RETURN_REASONS) came back on `returned_on`: our header, those data records with
    the result in their last 7 bytes, a trailer of their count and total, the end record."""
    transfer_file = Path(transfer_file)
    lines = transfer_file.read_bytes().split(b"\r\n")[:-1]
    data = []
    for line in lines[1:-2]:
        reference = int(zengin.parse_record(line)["customer_code1"])
        if reference in codes:
            data.append(line[:113] + f"{codes[reference]}{returned_on:%m%d}  ".encode("ascii"))
    missing = set(codes) - {int(zengin.parse_record(d)["customer_code1"]) for d in data}
    if missing:
        raise ValueError(f"{transfer_file.name} has no transfer {sorted(missing)}")
    total = sum(int(zengin.parse_record(d)["amount"]) for d in data)
    trailer = zengin._record("8", zengin._number(len(data), 6), zengin._number(total, 12),
                             zengin._field("", 101))
    key = transfer_file.name[len("zengin-"):-len(".txt")]
    notice = transfer_file.with_name(f"bank-returns-{key}-{returned_on:%m%d}.txt")
    write_bytes_atomic(notice, b"\r\n".join([lines[0], *data, trailer, lines[-1]]) + b"\r\n")
    return notice


def unanswered(outbox: str | Path) -> list[tuple[Path, str, str]]:
    """(folder, partner, idempotency key) of every transfer file under `outbox` without a
    response, in path order."""
    found = []
    for path in sorted(Path(outbox).rglob(f"*{_TRANSFER}*.csv")):
        if path.name.startswith(".") or not path.is_file():
            continue
        partner, key = path.name[:-len(".csv")].split(_TRANSFER, 1)
        if not (path.parent / response_file_name(partner, key)).exists():
            found.append((path.parent, partner, key))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandboxes.partners",
        description="Answer every points-transfer file in the outbox that has no response "
                    "(accounts ending in X or 0000 are rejected: account closed).")
    parser.add_argument("--outbox", required=True, help="the outbox folder (searched recursively)")
    args = parser.parse_args(argv)
    outbox = Path(args.outbox)
    if not outbox.is_dir():
        parser.error(f"{outbox} is not a folder")
    answered = 0
    for folder, partner, key in unanswered(outbox):
        path = respond(folder, partner, key)
        answered += 1
        print(f"answered {path}", flush=True)
    print(f"{answered} transfer file(s) answered", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
