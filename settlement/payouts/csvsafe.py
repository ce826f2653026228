"""CSV files that are safe to open in a spreadsheet, written atomically.

Formula injection (OWASP "CSV Injection"): a spreadsheet treats a cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula, so a member named
``=HYPERLINK("http://evil", "click")`` would become live in the check vendor's or the
finance team's spreadsheet. Every *text* cell that starts with one of those characters
(or with a line feed, or with the full-width forms ``＝ ＋ － ＠`` that some spreadsheets
also accept) is prefixed with a single quote, which spreadsheets show as text and hide.

Numbers must stay numbers: an amount such as ``-12.50`` written by us is not a formula, and
quoting it would turn it into text in the finance team's sums. Hence two kinds of cell:

* untrusted text goes through :func:`cell` (``write_csv_atomic`` applies it to every value
  that is not a :class:`Numeric`, so forgetting it is not possible);
* numbers we produce ourselves are :class:`Numeric` strings, made by :func:`numeric` or
  :func:`amount`, which accept only a plain decimal (``-?digits[.digits]``) and are written
  as they are. Python ``int`` and ``Decimal`` values are numbers too.

:func:`uncell` undoes :func:`cell` for a file read back (a partner echoing our reference).

Atomic writing: the whole file is rendered in memory, written to a temporary file in the
same folder, flushed and fsynced, then moved over the target with ``os.replace`` (atomic
on POSIX and Windows), and the folder is fsynced so the rename survives a power cut. A
reader (the vendor's pick-up job, our own ``find``) sees the old file or the new one, never
half of one. A file whose bytes are already exactly the ones to write is left untouched,
so an identical re-submission does not even change its modification time (a pick-up job
watching mtimes does not fetch it twice).
"""
from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Sequence

from settlement.money import format_amount

# OWASP's list, plus line feed and the full-width forms some spreadsheets also evaluate.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")

_NUMERIC = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z", re.ASCII)
_FORMULA_FIRST = frozenset(FORMULA_PREFIXES)  # each prefix is one character


class Numeric(str):
    """A plain decimal number as text ("-12.50", "0042"), written without escaping."""

    def __new__(cls, text: str) -> "Numeric":
        if not isinstance(text, str) or not _NUMERIC.match(text):
            raise ValueError(f"{str(text)[:40]!r} is not a plain decimal number")
        return super().__new__(cls, text)


def numeric(value: int | Decimal | str) -> Numeric:
    """A number we produced, as a cell that stays numeric (a negative one is not escaped)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, int):
        return str.__new__(Numeric, str(value))  # an int's text is always a plain decimal
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        return Numeric(format(value, "f"))
    return Numeric(value)


def amount(minor: int, digits: int) -> Numeric:
    """Minor units as the major-unit decimal string ("-12.50"), a numeric cell."""
    if type(minor) is not int:
        raise ValueError(f"{minor!r} is not an amount in minor units")
    # format_amount of an int is always a plain decimal: no need to check it again.
    return str.__new__(Numeric, format_amount(minor, digits))


def cell(value: Any) -> str:
    """Any value as a cell that no spreadsheet evaluates.

    ``None`` is an empty cell; :class:`Numeric`, ``int`` and finite ``Decimal`` values are
    numbers and kept as they are; anything else is text, and text starting with a formula
    character gets a leading single quote. Applying it twice changes nothing more.
    """
    if type(value) is str:  # the common case first: text
        return "'" + value if value[:1] in _FORMULA_FIRST else value
    if value is None:
        return ""
    if isinstance(value, Numeric):
        return str.__str__(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def uncell(text: str) -> str:
    """Undo :func:`cell` on a text read back from a file we (or a partner echoing us) wrote."""
    if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES):
        return text[1:]
    return text


def render_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """The file's bytes: UTF-8 without BOM, RFC 4180 (CRLF line ends, minimal quoting)."""
    width = len(header)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([cell(h) for h in header])
    for number, row in enumerate(rows, start=1):
        values = list(row)
        if len(values) != width:
            raise ValueError(f"row {number} has {len(values)} cells, the header {width}")
        writer.writerow([cell(v) for v in values])
    return buffer.getvalue().encode("utf-8")


class FileConflictError(RuntimeError):
    """The target file exists with other content and replacing it was not allowed."""

    def __init__(self, path: Path):
        super().__init__(f"{path} already exists with different content; not replaced")
        self.path = path


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, replace_different: bool = True,
                       mode: int = 0o600) -> bool:
    """Write `data` to `path` atomically; True if written, False if already identical.

    With ``replace_different=False`` an existing file with other bytes raises
    :class:`FileConflictError` (a batch file must never change under the same name).
    """
    target = Path(path)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        current = None
    if current == data:
        return False
    if current is not None and not replace_different:
        raise FileConflictError(target)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)
    return True


def write_csv_atomic(path: str | os.PathLike, header: Sequence[str],
                     rows: Iterable[Sequence[Any]], *, replace_different: bool = True,
                     mode: int = 0o600) -> bool:
    """Render `header` and `rows` (every non-numeric value through :func:`cell`) and write
    them atomically to `path`. True if the file was written, False if it already held
    exactly these bytes."""
    return write_bytes_atomic(path, render_csv(header, rows),
                              replace_different=replace_different, mode=mode)


_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\Z", re.ASCII)


def safe_file_name(name: str) -> str:
    """`name` if it is a plain file name (letters, digits, ``._-``; no folder, no leading
    dot), else ValueError: idempotency keys become file names and must not escape the
    outbox."""
    if not isinstance(name, str) or not _FILE_NAME.match(name) or ".." in name:
        raise ValueError(f"{str(name)[:60]!r} is not a safe file name")
    return name


class CsvFormatError(ValueError):
    """A file that is not readable CSV: bad UTF-8 or broken quoting, at `line`."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def read_csv(path: str | os.PathLike) -> list[tuple[int, list[str]]]:
    """A CSV file's records as (line number, cells), the header first; blank lines are
    skipped; a UTF-8 BOM is ignored. The line number is the record's first physical line.
    Cells are as written (see :func:`uncell`). Bad UTF-8 or broken quoting raise
    :class:`CsvFormatError` naming the line."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFormatError(data[:exc.start].count(b"\n") + 1, "not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                records.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise CsvFormatError(start, f"not valid CSV ({exc})") from None
    return records


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
