"""Commission reports: receive an upload, then process it (the worker job).

Receiving stores the bytes as they come, in chunks, in the database (the record of what was
sent), hashing them on the way; the same bytes again from the same source are a duplicate
and nothing is stored. Processing streams the stored chunks through the format's parser
into a temporary table and applies every line set-based, in ONE transaction: a crash
applies nothing, and running the job again finishes the work once.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from settlement import failpoints
from settlement.commissions.holds import confirm_held
from settlement.commissions.lifecycle import ApplyContext, apply_incoming, attach_unattributed
from settlement.db import tenant_session
from settlement.errors import DomainError
from settlement.models import Report, ReportChunk, ReportError, Tenant
from settlement.numbering import take_number
from settlement.referrals.service import evaluate_referrals
from settlement.reports import bounds
from settlement.reports.formats import (
    FORMATS,
    MEDIA_TYPES,
    ParseContext,
    ReportFormatError,
    media_of,
    parser_for,
)
from settlement.reports.copy_csv import stage_in_database
from settlement.reports.pipeline import ahead
from settlement.reports.formats.base import LineError
from settlement.reports.staging import stage, take_parse_errors
from settlement.sql import is_postgres
from settlement.states import ReportStatus
from settlement.tenants.service import policy_of

CHUNK_BYTES = 1 << 20
AS_OF_SKEW = dt.timedelta(minutes=5)  # clocks of networks and ours may differ a little
AS_OF_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
MEDIA = ("csv", "json", "ndjson")
FINAL = (ReportStatus.COMPLETED, ReportStatus.FAILED)
# A report whose job died this many times is failed by the watchdog instead of retried:
# something in it kills the worker (memory, a crash), and retrying forever helps nobody.
MAX_ATTEMPTS = 4
# How long a queued or processing report that no worker holds may wait for its job before
# the watchdog enqueues it again (an upload commits a moment before it enqueues).
STALLED_AFTER = dt.timedelta(minutes=1)
FIELD_CHARS = 64  # report_errors.field
log = logging.getLogger("settle.reports")


# Why an upload is refused as a whole (UploadRefused.code); its lines say what in it.
UNREADABLE = "unreadable_upload"
UNSUPPORTED_MEDIA = "unsupported_media_type"  # a media type or encoding the format cannot read
UNACCEPTABLE = "unacceptable_upload"  # well-formed, but not what this tenant takes


class UploadTooLarge(DomainError):
    def __init__(self, limit: int):
        super().__init__("upload_too_large", f"the body is larger than {limit} bytes")
        self.limit = limit


class UploadRefused(DomainError):
    def __init__(self, errors: list[LineError], code: str = UNREADABLE):
        super().__init__(code, "; ".join(e.message for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Received:
    report_id: int
    duplicate: bool


def _rechunk(stream: Iterable[bytes]) -> Iterator[bytes]:
    """Re-cut an arbitrary byte stream into chunks of CHUNK_BYTES (the last may be short)."""
    buf = bytearray()
    for piece in stream:
        buf += piece
        while len(buf) >= CHUNK_BYTES:
            yield bytes(buf[:CHUNK_BYTES])
            del buf[:CHUNK_BYTES]
    if buf:
        yield bytes(buf)


def receive(session: Session, tenant_id: int, fmt: str, media: str, body: Iterable[bytes],
            *, uploaded_by: str, source: str | None = None, as_of: dt.datetime | None = None,
            max_bytes: int) -> Received:
    """Store an upload. The caller commits, then enqueues `process` for a new report."""
    if fmt not in FORMATS:
        raise UploadRefused([LineError(None, "format", "unknown_format",
                                       f"format must be one of {', '.join(FORMATS)}")])
    if media not in MEDIA:
        raise UploadRefused([LineError(None, "content-type", "unsupported_media",
                                       "send text/csv, application/json or NDJSON")])
    readable = media_of(fmt)
    if media not in readable:
        accepted = ", ".join(MEDIA_TYPES[m] for m in readable)
        raise UploadRefused([LineError(None, "content-type", "unsupported_media",
                                       f"format {fmt} reads {accepted}, not "
                                       f"{MEDIA_TYPES[media]}")], UNSUPPORTED_MEDIA)
    source = _source_key(session, tenant_id, fmt, source)
    now = dt.datetime.now(dt.timezone.utc)
    problem = as_of_problem(as_of, now) if as_of is not None else None
    if problem is not None:
        raise UploadRefused([problem])
    as_of = as_of or now
    report = Report(tenant_id=tenant_id, format=fmt, media=media, source=source,
                    sha256=f"receiving:{uuid.uuid4().hex}", size_bytes=0,
                    status=ReportStatus.QUEUED, as_of=as_of, uploaded_by=uploaded_by)
    session.add(report)
    session.flush()
    digest, size, seq = hashlib.sha256(), 0, 0
    table = ReportChunk.__table__
    for chunk in _rechunk(body):
        size += len(chunk)
        if size > max_bytes:
            raise UploadTooLarge(max_bytes)
        digest.update(chunk)
        session.execute(table.insert().values(tenant_id=tenant_id, report_id=report.id,
                                              seq=seq, data=chunk))
        seq += 1
    if size == 0:
        raise UploadRefused([LineError(None, None, "empty_body", "the report is empty")])
    sha = digest.hexdigest()
    original = _same_content(session, tenant_id, source, sha)
    if original is not None:
        return Received(original, True)
    report.sha256, report.size_bytes = sha, size
    # Numbered last: the tenant's counter stays locked from here to the commit, which
    # must not last an upload.
    report.number = take_number(session, tenant_id, "report")
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # The same file was stored by a concurrent upload a moment ago.
        original = _same_content(session, tenant_id, source, sha)
        if original is None:
            raise
        return Received(original, True)
    return Received(report.id, False)


def as_of_problem(as_of: dt.datetime, now: dt.datetime) -> LineError | None:
    """Why an as-of date-time cannot be taken, or None. The window is from AS_OF_EARLIEST
    to now (plus a little clock skew); the checks never overflow near year 1 or 9999."""
    if as_of.tzinfo is None:
        return LineError(None, "as_of", "invalid_as_of", "as_of needs a UTC offset")
    # Offsets are under a day: the year alone keeps the arithmetic below in range.
    if as_of.year < AS_OF_EARLIEST.year or as_of < AS_OF_EARLIEST:
        return LineError(None, "as_of", "as_of_out_of_range",
                         f"as_of must be on or after {AS_OF_EARLIEST.date().isoformat()}")
    if as_of.year > now.year + 1 or as_of > now + AS_OF_SKEW:
        # A report from the future would admit future-dated lines and make every later
        # report look stale.
        return LineError(None, "as_of", "future_as_of",
                         f"as_of {as_of.isoformat()} is in the future")
    return None


def _source_key(session: Session, tenant_id: int, fmt: str, source: str | None) -> str:
    """What a report's lines are identified under. A network report's `source` is one of the
    tenant's accounts of that network (policy `networks.X.accounts`; default: the only one),
    so the same transaction is one commission whatever label it was sent under; the one
    implicit account of a network without declared accounts is the network's name, which
    is also its key. A generic report's source is the sender's own label."""
    if fmt == "generic":
        return source or fmt
    accounts = policy_of(session.get(Tenant, tenant_id)).network_accounts(fmt)
    if source is None and len(accounts) == 1:
        source = accounts[0]
    if source not in accounts:
        said = "no source" if source is None else f"source {source[:80]!r}"
        raise UploadRefused([LineError(None, "source", "unknown_account",
                                       f"{said} is not a {fmt} account of this tenant; "
                                       f"one of: {', '.join(accounts)}")], UNACCEPTABLE)
    return source_key(fmt, source)


def source_key(fmt: str, account: str) -> str:
    """A network account's key: the implicit account is the network's name alone (as every
    report was keyed before accounts were declared), others are "network:account"."""
    return fmt if account == fmt else f"{fmt}:{account}"


def _same_content(session: Session, tenant_id: int, source: str, sha: str) -> int | None:
    return session.scalar(select(Report.id).where(
        Report.tenant_id == tenant_id, Report.source == source, Report.sha256 == sha))


def _chunks(engine: Engine, tenant_id: int, report_id: int) -> Iterator[bytes]:
    """The stored upload, one chunk at a time, on a connection of its own (the main one is
    busy with COPY)."""
    with engine.connect() as conn:
        seq = 0
        while True:
            data = conn.execute(text(
                "SELECT data FROM report_chunks WHERE tenant_id = :t AND report_id = :r "
                "AND seq = :s"), {"t": tenant_id, "r": report_id, "s": seq}).scalar()
            if data is None:
                return
            yield bytes(data)
            seq += 1


def process(engine: Engine, tenant_id: int, report_id: int) -> Report:
    """The worker job: parse and apply a stored report once. Safe to run again."""
    with tenant_session(engine, tenant_id, expire_on_commit=False) as session:
        report = _lock_report(session, tenant_id, report_id)
        if report.status in FINAL:
            return report
        session.execute(update(Report).where(Report.tenant_id == tenant_id,
                                             Report.id == report_id)
                        .values(status=ReportStatus.PROCESSING, attempts=Report.attempts + 1))
        session.commit()
    try:
        with tenant_session(engine, tenant_id, expire_on_commit=False) as session:
            report = _lock_report(session, tenant_id, report_id)
            if report.status in FINAL:
                return report
            _apply(session, engine, report)
            failpoints.reach("report.applied")
            session.commit()
            return report
    except ReportFormatError as exc:
        return _fail(engine, tenant_id, report_id, exc.errors)
    except OperationalError:
        raise  # the database went away: the job is retried, or the watchdog enqueues it
    except Exception as exc:  # noqa: BLE001 - whatever it is, the report must end
        # Nothing was applied (the transaction rolled back); the uploader reads why, and
        # may retry once the cause is fixed. The details stay in the log.
        log.exception("report %s of tenant %s failed", report_id, tenant_id)
        return _fail(engine, tenant_id, report_id, [LineError(
            None, None, "processing_failed",
            f"the report could not be processed ({type(exc).__name__}); nothing of it was "
            f"applied. POST /v1/reports/{NUMBER}/retry runs it again")])


def _lock_report(session: Session, tenant_id: int, report_id: int) -> Report:
    query = select(Report).where(Report.tenant_id == tenant_id, Report.id == report_id)
    if is_postgres(session):
        query = query.with_for_update()  # one worker applies a report at a time
    report = session.scalar(query)
    if report is None:
        raise LookupError(f"no report {report_id} for tenant {tenant_id}")
    return report


def _apply(session: Session, engine: Engine, report: Report) -> None:
    if is_postgres(session):
        # Each statement below reads its rows once: compiling them to machine code (the
        # planner asks for it above a million rows) cost more than it saved, 0.9 s of the
        # 3.5 s classification at 1M lines.
        session.execute(text("SET LOCAL jit = off"))
    tenant = session.get(Tenant, report.tenant_id)
    policy = policy_of(tenant)
    zone = ZoneInfo(policy.timezone)
    as_of = report.as_of if report.as_of.tzinfo else report.as_of.replace(tzinfo=dt.timezone.utc)
    local_today = as_of.astimezone(zone).date()
    # An event dated after the report's as-of date anywhere on earth (UTC+14 is the
    # furthest ahead) is in the future, whichever zone the network dates events in.
    latest = (as_of.astimezone(dt.timezone.utc) + dt.timedelta(hours=14)).date()
    parse_ctx = ParseContext(policy.currency, policy.minor_digits, latest,
                             member_field=_member_field(policy, report.format), zone=zone)
    parser = parser_for(report.format, report.media)
    by_copy = _stage_in_database(session, engine, report, parse_ctx)
    if by_copy:
        parse_errors = 0  # COPY stages clean files only: line errors are the parsers' to name
    else:
        with ahead(_chunks(engine, report.tenant_id, report.id)) as chunks:
            stage(session, bounds.checked(parser(chunks, parse_ctx), report.format))
        parse_errors = take_parse_errors(session, report.tenant_id, report.id)
    ctx = ApplyContext(
        tenant_id=report.tenant_id, report_id=report.id, fmt=report.format,
        source=report.source, currency=policy.currency, rounding=policy.rounding,
        as_of_us=_epoch_us(as_of),
        today=local_today, whole_or_nothing=policy.report_errors == "whole",
        first_error_seq=parse_errors, digits=policy.minor_digits,
        hold_days=_hold_days(policy, report.format),
        staged_by_copy=by_copy)
    result = apply_incoming(session, ctx, parse_errors)
    if result.applied:
        attached = attach_unattributed(session, report.tenant_id, policy.currency,
                                       f"report:{report.id}")
        # Every report also ends the holds that are over by its as-of date.
        _, held = confirm_held(session, report.tenant_id, policy.currency, local_today)
        evaluate_referrals(session, report.tenant_id, policy, today=local_today,
                           entry_ids=(result.entry_id, attached, held,
                                      result.released_entry_id))
    counts = dict(result.counts)
    error_lines = session.execute(text(
        "SELECT count(DISTINCT coalesce(line, -1)) FROM report_errors "
        "WHERE tenant_id = :t AND report_id = :r AND code NOT IN "
        "('duplicate_transaction', 'unknown_retailer', 'member_changed', "
        "'retailer_changed', 'reinstated', 'unconfirmed', 'unknown_original')"),
        {"t": report.tenant_id, "r": report.id}).scalar_one()
    good = sum(n for outcome, n in counts.items() if outcome not in ("unattributed", "unmatched"))
    report.lines = good + error_lines
    report.rejected = result.refused + error_lines
    if result.applied:
        report.inserted = counts.get("inserted", 0)
        report.updated = counts.get("updated", 0)
        report.unchanged = counts.get("unchanged", 0)
        report.stale = counts.get("stale", 0)
        report.unattributed = counts.get("unattributed", 0)
        report.unmatched = counts.get("unmatched", 0)
        report.status = ReportStatus.COMPLETED
    else:
        report.status = ReportStatus.FAILED
    report.entry_id = result.entry_id
    report.finished_at = func.now()


def _member_field(policy, fmt: str) -> str | None:
    return None if fmt == "generic" else policy.member_field(fmt)


def _hold_days(policy, fmt: str) -> int | None:
    return None if fmt == "generic" else policy.network(fmt).confirm_after_days


def _stage_in_database(session: Session, engine: Engine, report: Report,
                       parse_ctx: ParseContext) -> bool:
    """A generic CSV on PostgreSQL is parsed by the database when it is clean (copy_csv)."""
    if (report.format, report.media) != ("generic", "csv") or \
            not is_postgres(session):
        return False
    # The next chunk is read while this one is checked; a body handed back mid-stream
    # releases its connection as the block ends.
    with ahead(_chunks(engine, report.tenant_id, report.id)) as chunks:
        return stage_in_database(session, chunks, parse_ctx)


def _epoch_us(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# Stands for the report's public number in a message (the uploader knows the report by it,
# never by its internal id); _fail writes the number in.
NUMBER = "<report number>"


def _fail(engine: Engine, tenant_id: int, report_id: int, errors: list[LineError]) -> Report:
    """A file that cannot be read at all: record why, apply nothing."""
    with tenant_session(engine, tenant_id, expire_on_commit=False) as session:
        report = _lock_report(session, tenant_id, report_id)
        if report.status in FINAL:
            return report  # another job ended it meanwhile (the watchdog's race)
        session.execute(ReportError.__table__.delete().where(
            ReportError.tenant_id == tenant_id, ReportError.report_id == report_id))
        session.execute(ReportError.__table__.insert(), [
            {"tenant_id": tenant_id, "report_id": report_id, "seq": i + 1, "line": e.line,
             "field": _clip(e.field), "code": e.code,
             "message": e.message.replace(NUMBER, str(report.number))}
            for i, e in enumerate(errors)])
        report.status = ReportStatus.FAILED
        report.rejected = 0
        report.finished_at = func.now()
        session.commit()
        return report


def _clip(name: str | None) -> str | None:
    """A field name as report_errors holds it: a header of a file that is not CSV (a tab-
    separated one) can be one long name, which the message quotes in full anyway."""
    if name is None or len(name) <= FIELD_CHARS:
        return name
    return name[:FIELD_CHARS - 1] + "\u2026"


class RetryRefused(DomainError):
    def __init__(self, message: str):
        super().__init__("not_failed", message)


def retry(session: Session, tenant_id: int, report_id: int) -> Report:
    """Put a failed report back in the queue (nothing of it was applied), its errors
    cleared. The caller commits, then enqueues `process`."""
    report = _lock_report(session, tenant_id, report_id)
    if report.status != ReportStatus.FAILED or report.entry_id is not None:
        raise RetryRefused(f"report {report.number} is {report.status}; only a failed report "
                           "can be retried")
    session.execute(ReportError.__table__.delete().where(
        ReportError.tenant_id == tenant_id, ReportError.report_id == report_id))
    for count in ("lines", "inserted", "updated", "unchanged", "stale", "rejected",
                  "unattributed"):
        setattr(report, count, 0)
    report.status, report.attempts, report.finished_at = ReportStatus.QUEUED, 0, None
    session.flush()
    return report


@dataclass
class Watched:
    requeued: list[tuple[int, int]] = field(default_factory=list)  # (tenant id, report id)
    abandoned: list[tuple[int, int]] = field(default_factory=list)


def requeue_stalled_reports(engine: Engine, requeue: Callable[[int, int], None], *,
                            stalled_after: dt.timedelta = STALLED_AFTER,
                            max_attempts: int = MAX_ATTEMPTS) -> Watched:
    """The watchdog: every report left queued or processing by a job that died is given to
    `requeue(tenant_id, report_id)` again, or failed after `max_attempts` attempts. Safe to
    run at any time, as often as wanted: a report a worker is applying is locked (on
    PostgreSQL) and skipped, and `process` applies a report once however often it runs."""
    cutoff = dt.datetime.now(dt.timezone.utc) - stalled_after
    watched = Watched()
    with tenant_session(engine) as session:
        query = select(Report.tenant_id, Report.id, Report.attempts).where(
            Report.status.in_((ReportStatus.QUEUED, ReportStatus.PROCESSING)),
            Report.created_at < cutoff)
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        for tenant_id, report_id, attempts in session.execute(query).all():
            target = watched.abandoned if attempts >= max_attempts else watched.requeued
            target.append((tenant_id, report_id))
        session.rollback()  # the locks: process() takes the report's lock itself
    for tenant_id, report_id in watched.abandoned:
        _fail(engine, tenant_id, report_id, [LineError(
            None, None, "processing_abandoned",
            f"the report's processing died {max_attempts} times (the worker was stopped "
            "or ran out of memory); nothing of it was applied. "
            f"POST /v1/reports/{NUMBER}/retry runs it again")])
    for tenant_id, report_id in watched.requeued:
        requeue(tenant_id, report_id)
    return watched


def report_errors(session: Session, tenant_id: int, report_id: int,
                  limit: int = 1000, after: int = 0) -> list[ReportError]:
    return list(session.scalars(select(ReportError).where(
        ReportError.tenant_id == tenant_id, ReportError.report_id == report_id,
        ReportError.seq > after).order_by(ReportError.seq).limit(limit)))
