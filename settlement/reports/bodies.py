"""An upload's bytes as the parsers expect them: UTF-8 text, uncompressed. Networks export
gzipped files, so a gzip body (Content-Encoding: gzip, or a body that starts with gzip's
magic bytes, as a .csv.gz file does) is inflated on the way, a piece at a time, and the size
limit counts the inflated bytes (a small bomb cannot fill the database). A UTF-16 body is
refused with that reason instead of failing later as a file without a header."""
from __future__ import annotations

import zlib
from typing import Iterable, Iterator

from settlement.reports.formats.base import LineError
from settlement.reports.service import UNREADABLE, UNSUPPORTED_MEDIA, UploadRefused

GZIP_MAGIC = b"\x1f\x8b"
ENCODINGS = (None, "", "identity", "gzip", "x-gzip")
INFLATE_PIECE = 1 << 20  # inflated bytes per step: memory stays flat whatever the ratio


def _refused(field: str, code: str, message: str, refusal: str = UNREADABLE) -> UploadRefused:
    return UploadRefused([LineError(None, field, code, message)], refusal)


def plain_body(chunks: Iterable[bytes], content_encoding: str | None) -> Iterator[bytes]:
    """The body, inflated if gzipped; UploadRefused for an encoding we do not read."""
    encoding = (content_encoding or "").strip().lower() or None
    if encoding not in ENCODINGS:
        raise _refused("content-encoding", "unsupported_encoding",
                       f"Content-Encoding {encoding[:40]!r} is not read; send gzip or none",
                       UNSUPPORTED_MEDIA)
    chunks = iter(chunks)
    first = b""
    for chunk in chunks:  # enough bytes to recognise gzip or UTF-16
        first += chunk
        if len(first) >= 4:
            break
    gzipped = first.startswith(GZIP_MAGIC)
    if encoding in ("gzip", "x-gzip") and not gzipped:
        raise _refused("content-encoding", "invalid_gzip",
                       "Content-Encoding says gzip, but the body is not gzip")
    body = _prepend(first, chunks)
    if gzipped:
        body = _inflated(body)
        first = b""
        for piece in body:
            first += piece
            if len(first) >= 4:
                break
        body = _prepend(first, body)
    _refuse_utf16(first)
    return body


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _refuse_utf16(head: bytes) -> None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4]:
        raise _refused("body", "not_utf8",
                       "the body looks like UTF-16 (or UTF-32); send it as UTF-8")


def _inflated(compressed: Iterable[bytes]) -> Iterator[bytes]:
    inflater = zlib.decompressobj(wbits=31)  # gzip framing
    try:
        for chunk in compressed:
            data = chunk
            while data:
                piece = inflater.decompress(data, INFLATE_PIECE)
                if piece:
                    yield piece
                data = inflater.unconsumed_tail
            if inflater.eof:
                break  # what follows a gzip member is ignored, as gzip tools do
        tail = inflater.flush()
        if tail:
            yield tail
    except zlib.error as exc:
        raise _refused("body", "invalid_gzip", f"the gzip body is damaged: {exc}") from None
    if not inflater.eof:
        raise _refused("body", "invalid_gzip", "the gzip body ends early")
