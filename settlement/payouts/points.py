"""Points transfers to loyalty partners (Amex Membership Rewards, Bilt) by file exchange.

``submit`` writes ``<partner>-transfer-<idempotency_key>.csv`` into ``ctx.outbox``,
atomically (see ``csvsafe``), with the columns ``reference, member_account, points,
member_external_id, payout_date``, rows sorted by item id, so the same batch always gives
the same bytes; a transfer file is never replaced by different content under its name.
Every item in it is PENDING: the partner credits points later (Amex: 8-12 weeks after it
receives the file), and ``provider_batch_id`` is the file name.

The partner answers with ``<partner>-response-<idempotency_key>.csv`` in the same folder,
columns ``reference, status, reason``, status ``ACCEPTED`` (points credited: SUCCEEDED) or
``REJECTED`` (FAILED with the partner's reason). :func:`ingest_response` reads it and
refuses the whole file, naming every faulty line and field, when a column is missing, a
reference is empty, not in the batch or repeated, or a status is unknown: nothing is half
applied. References the response does not mention stay PENDING.

``poll`` answers from the response file when there is one (done once no item is pending);
a malformed one leaves every item PENDING and reports the error, for an operator to get
the file corrected. ``find`` answers SUBMITTED when the transfer file lists the batch,
REFUSED when it does not exist (the run may then submit it again).

Lines the partner cannot take (no member account, no points, fewer than the partner's
minimum) are FAILED at submission with a reason and left out of the file; the planner
should already have skipped them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from settlement.payouts.base import (
    FAILED, PENDING, REFUSED, SUBMITTED, SUCCEEDED, BatchContext, BatchResult, ItemOutcome,
    PayoutLine,
)
from settlement.payouts.csvsafe import (
    CsvFormatError, numeric, read_csv, safe_file_name, uncell, write_csv_atomic,
)

TRANSFER_COLUMNS = ("reference", "member_account", "points", "member_external_id",
                    "payout_date")
RESPONSE_COLUMNS = ("reference", "status", "reason")
ACCEPTED = "ACCEPTED"
REJECTED = "REJECTED"
SENT = "SENT"  # provider_status of an item in a transfer file not answered yet
MAX_REASON = 200  # run_items.failure_reason
DEFAULT_REJECTION = "rejected by the partner"


def transfer_file_name(partner: str, idempotency_key: str) -> str:
    return safe_file_name(f"{partner}-transfer-{idempotency_key}.csv")


def response_file_name(partner: str, idempotency_key: str) -> str:
    return safe_file_name(f"{partner}-response-{idempotency_key}.csv")


@dataclass(frozen=True)
class LineError:
    line: int | None
    field: str | None
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "code": self.code,
                "message": self.message}


class ResponseFileError(ValueError):
    """A partner response file refused as a whole; `errors` names each line and field."""

    def __init__(self, path: Path, errors: list[LineError]):
        self.path = Path(path)
        self.errors = errors
        shown = "; ".join(_describe(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{self.path.name} refused: {shown}{more}")


def _describe(error: LineError) -> str:
    where = f"line {error.line}" if error.line is not None else "file"
    if error.field:
        where += f", field {error.field}"
    return f"{where}: {error.message}"


def ingest_response(path: str | Path, lines: list[PayoutLine]) -> list[ItemOutcome]:
    """The outcomes a partner response file gives the batch's `lines` (in their order):
    ACCEPTED -> SUCCEEDED, REJECTED -> FAILED with the partner's reason, not mentioned ->
    PENDING. Any fault refuses the whole file with :class:`ResponseFileError`."""
    path = Path(path)
    try:
        records = read_csv(path)
    except CsvFormatError as exc:
        raise ResponseFileError(path, [LineError(exc.line, None, "invalid_csv",
                                                 exc.message)]) from None
    if not records:
        raise ResponseFileError(path, [LineError(1, None, "empty_file",
                                                 "the file is empty (no header)")])
    header_line, raw_header = records[0]
    header = [h.strip().lower() for h in raw_header]
    errors: list[LineError] = []
    for name in RESPONSE_COLUMNS:
        if name not in header:
            errors.append(LineError(header_line, name, "missing_column",
                                    f"the header has no {name!r} column"))
        elif header.count(name) > 1:
            errors.append(LineError(header_line, name, "duplicate_column",
                                    f"the header has the {name!r} column twice"))
    if errors:
        raise ResponseFileError(path, errors)
    at = {name: header.index(name) for name in RESPONSE_COLUMNS}

    by_reference = {ln.reference: ln for ln in lines}
    seen: dict[str, int] = {}
    answers: dict[int, ItemOutcome] = {}
    for number, row in records[1:]:
        if len(row) != len(header):
            missing = [n for n in RESPONSE_COLUMNS if at[n] >= len(row)]
            errors.append(LineError(
                number, missing[0] if missing else None, "wrong_field_count",
                f"{len(row)} fields where the header has {len(header)}"))
            continue
        reference = uncell(row[at["reference"]].strip())
        status = uncell(row[at["status"]].strip()).upper()
        reason = uncell(row[at["reason"]].strip())
        line_ok = True
        if not reference:
            errors.append(LineError(number, "reference", "missing", "no reference"))
            line_ok = False
        elif reference in seen:
            errors.append(LineError(number, "reference", "duplicate_reference",
                                    f"reference {reference[:60]!r} already on line "
                                    f"{seen[reference]}"))
            line_ok = False
        elif reference not in by_reference:
            errors.append(LineError(number, "reference", "unknown_reference",
                                    f"reference {reference[:60]!r} is not in the batch"))
            line_ok = False
        else:
            seen[reference] = number
        if status not in (ACCEPTED, REJECTED):
            errors.append(LineError(number, "status", "unknown_status",
                                    f"status {status[:30]!r} is not ACCEPTED or REJECTED"))
            line_ok = False
        if not line_ok:
            continue
        item = by_reference[reference]
        if status == ACCEPTED:
            answers[item.item_id] = ItemOutcome(item.item_id, SUCCEEDED,
                                                provider_item_id=reference[:64],
                                                provider_status=ACCEPTED)
        else:
            answers[item.item_id] = ItemOutcome(item.item_id, FAILED,
                                                provider_item_id=reference[:64],
                                                provider_status=REJECTED,
                                                reason=(reason or DEFAULT_REJECTION)[:MAX_REASON])
    if errors:
        raise ResponseFileError(path, errors)
    return [answers.get(ln.item_id) or _pending(ln) for ln in lines]


def _pending(line: PayoutLine) -> ItemOutcome:
    return ItemOutcome(line.item_id, PENDING, provider_item_id=line.reference[:64],
                       provider_status=SENT)


class PointsTransferAdapter:
    """A partner that takes points transfers as a file and answers with a file."""

    method: str = ""
    partner: str = ""  # file prefix
    label: str = ""  # for reasons: "Amex Membership Rewards"
    min_points: int = 1

    @classmethod
    def from_settings(cls, settings) -> "PointsTransferAdapter":
        return cls()

    def transfer_name(self, ctx: BatchContext) -> str:
        return transfer_file_name(self.partner, ctx.idempotency_key)

    def response_name(self, ctx: BatchContext) -> str:
        return response_file_name(self.partner, ctx.idempotency_key)

    def _check_ctx(self, ctx: BatchContext) -> None:
        if ctx.method != self.method:
            raise ValueError(f"a {ctx.method!r} batch given to the {self.method} adapter")

    def _split(self, lines: list[PayoutLine]) -> tuple[list[PayoutLine], list[ItemOutcome]]:
        payable: list[PayoutLine] = []
        failed: list[ItemOutcome] = []
        references: set[str] = set()
        for line in lines:
            if line.reference in references:
                raise ValueError(f"reference {line.reference!r} twice in one batch")
            references.add(line.reference)
            if not (line.destination or "").strip():
                reason = f"no {self.label} account"
            elif line.points is None or line.points <= 0:
                reason = "no points to transfer"
            elif line.points < self.min_points:
                reason = f"below the {self.label} minimum of {self.min_points} points"
            else:
                payable.append(line)
                continue
            failed.append(ItemOutcome(line.item_id, FAILED, reason=reason))
        payable.sort(key=lambda ln: ln.item_id)
        return payable, failed

    def submit(self, ctx: BatchContext, lines: list[PayoutLine]) -> BatchResult:
        self._check_ctx(ctx)
        payable, failed = self._split(lines)
        name = self.transfer_name(ctx)
        payout_date = ctx.payout_date.isoformat()
        rows = [(ln.reference, ln.destination, numeric(ln.points), ln.member, payout_date)
                for ln in payable]
        write_csv_atomic(Path(ctx.outbox) / name, TRANSFER_COLUMNS, rows,
                         replace_different=False)
        outcomes = [_pending(ln) for ln in payable] + failed
        return BatchResult(SUBMITTED, provider_batch_id=name,
                           outcomes=_in_order(outcomes, lines), done=not payable)

    def poll(self, ctx: BatchContext, provider_batch_id: str,
             lines: list[PayoutLine]) -> BatchResult:
        self._check_ctx(ctx)
        payable, failed = self._split(lines)
        response = Path(ctx.outbox) / self.response_name(ctx)
        error = None
        if response.exists():
            try:
                answered = ingest_response(response, payable)
            except ResponseFileError as exc:
                answered = [_pending(ln) for ln in payable]
                error = str(exc)
        else:
            answered = [_pending(ln) for ln in payable]
        outcomes = answered + failed
        done = error is None and all(o.status != PENDING for o in outcomes)
        return BatchResult(SUBMITTED, provider_batch_id=provider_batch_id,
                           outcomes=_in_order(outcomes, lines), error=error, done=done)

    def find(self, ctx: BatchContext, lines: list[PayoutLine]) -> BatchResult:
        self._check_ctx(ctx)
        payable, failed = self._split(lines)
        name = self.transfer_name(ctx)
        path = Path(ctx.outbox) / name
        if not path.exists():
            return BatchResult(REFUSED, error=f"{name} not found in the outbox")
        try:
            records = read_csv(path)
        except (OSError, CsvFormatError) as exc:
            return BatchResult(REFUSED, error=f"{name} is unreadable: {exc}")
        header = records[0][1] if records else []
        if "reference" not in header:
            return BatchResult(REFUSED, error=f"{name} has no reference column")
        at = header.index("reference")
        listed = {uncell(row[at]) for _, row in records[1:] if len(row) > at}
        absent = [ln.reference for ln in payable if ln.reference not in listed]
        if absent:
            return BatchResult(REFUSED, error=f"{name} lacks reference {absent[0]!r}")
        outcomes = [_pending(ln) for ln in payable] + failed
        return BatchResult(SUBMITTED, provider_batch_id=name,
                           outcomes=_in_order(outcomes, lines), done=not payable)


class AmexMRAdapter(PointsTransferAdapter):
    method = "amex_mr"
    partner = "amex"
    label = "Amex Membership Rewards"
    min_points = 500  # Amex's minimum transfer


class BiltAdapter(PointsTransferAdapter):
    method = "bilt"
    partner = "bilt"
    label = "Bilt"
    min_points = 1


def _in_order(outcomes: list[ItemOutcome], lines: list[PayoutLine]) -> list[ItemOutcome]:
    position = {ln.item_id: i for i, ln in enumerate(lines)}
    return sorted(outcomes, key=lambda o: position[o.item_id])
