"""Report formats: one module per network, each with `PARSERS = {media: parse}`.

`media` is "csv", "json" or "ndjson"; `parse(chunks, ctx)` yields `ParsedLine` or
`LineError` (see base.py). `SOURCE_RETAILER_KEY` tells how a format names the retailer:
generic lines carry our retailer slug, network lines the network's advertiser id.
"""
from __future__ import annotations

from importlib import import_module

from settlement.reports.formats.base import (  # noqa: F401 (re-exported)
    LineError,
    ParseContext,
    ParsedLine,
    Parser,
    ReportFormatError,
)

FORMATS = ("generic", "cj", "impact", "awin", "rakuten")
MEDIA_TYPES = {"csv": "text/csv", "json": "application/json", "ndjson": "application/x-ndjson"}


def media_of(fmt: str) -> tuple[str, ...]:
    """The media ("csv", "json", "ndjson") a format reads."""
    return tuple(sorted(import_module(f"settlement.reports.formats.{fmt}").PARSERS))


def parser_for(fmt: str, media: str) -> Parser:
    if fmt not in FORMATS:
        raise ReportFormatError([LineError(None, "format", "unknown_format",
                                           f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")])
    parsers = import_module(f"settlement.reports.formats.{fmt}").PARSERS
    if media not in parsers:
        raise ReportFormatError([LineError(
            None, "content-type", "unsupported_media",
            f"format {fmt} accepts {', '.join(sorted(parsers))}, not {media}")])
    return parsers[media]
