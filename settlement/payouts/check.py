"""Checks by mail: a check-print file for the check vendor and a positive-pay file for the bank.

``submit`` writes two files into ``ctx.outbox``, each atomically (see ``csvsafe``):

1. ``positive-pay-<idempotency_key>.csv``, for the bank, which honours only the checks it
   lists: ``account, check_number, issue_date, amount, payee_name``.
2. ``checks-<idempotency_key>.csv``, for the check vendor, which prints and mails them:
   ``check_number, payee_name, address_line1, address_line2, city, region, postal_code,
   country, amount, currency, memo, payout_date``.

The positive-pay file is written first, so a check file never exists without the bank
knowing its checks; ``find`` requires both. Rows are sorted by check number, amounts are
major-unit decimal strings (``format_amount``), dates ISO 8601, and every text cell is
neutralised against formula injection, so the same batch always gives byte-identical
files. An existing file with different bytes under the same name is never replaced
(``FileConflictError``): a printed batch file must not silently change.

Check numbers: ``check_number = number_offset + item_id``. A run item's id comes from one
identity sequence for all run items (every tenant, every run) and never changes, so a
number is stable however often the batch is written, and two runs (or two batches, or
two tenants) never share one. The optional offset (default 0) moves the series clear of
the numbers a tenant's bank account already uses. A number has at most 10 digits, what
positive-pay formats carry; a larger one is refused.

A line without a complete mailing address (payee name, first line, city, postal code,
country) is FAILED with reason "no mailing address" (or "incomplete mailing address:
...") and left out of the files; the planner should have skipped it already. A line with
an amount that is not positive is FAILED too. Every other item is SUCCEEDED at once: a
check issued is a payout (``provider_item_id`` is the check number, ``provider_status``
``ISSUED``), so the batch is done. A returned or voided check is a later, separate event.
"""
from __future__ import annotations

from pathlib import Path

from settlement.payouts.base import (
    FAILED, REFUSED, SUBMITTED, SUCCEEDED, UNKNOWN, BatchContext, BatchResult, ItemOutcome,
    PayoutLine,
)
from settlement.payouts.csvsafe import (
    CsvFormatError, amount, numeric, read_csv, safe_file_name, uncell, write_csv_atomic,
)
from settlement.money import format_amount

PLACEHOLDER_ACCOUNT = "ACCOUNT-NOT-CONFIGURED"
MAX_CHECK_NUMBER = 9_999_999_999  # 10 digits
ISSUED = "ISSUED"

CHECK_COLUMNS = ("check_number", "payee_name", "address_line1", "address_line2", "city",
                 "region", "postal_code", "country", "amount", "currency", "memo",
                 "payout_date")
POSITIVE_PAY_COLUMNS = ("account", "check_number", "issue_date", "amount", "payee_name")

NO_ADDRESS = "no mailing address"
_REQUIRED_ADDRESS = (("name", "payee name"), ("line1", "address line"), ("city", "city"),
                     ("postal_code", "postal code"), ("country", "country"))


def checks_file_name(idempotency_key: str) -> str:
    return safe_file_name(f"checks-{idempotency_key}.csv")


def positive_pay_file_name(idempotency_key: str) -> str:
    return safe_file_name(f"positive-pay-{idempotency_key}.csv")


def address_problem(line: PayoutLine) -> str | None:
    """Why a check cannot be mailed for `line`, or None."""
    address = line.address
    if address is None:
        return NO_ADDRESS
    missing = [label for attr, label in _REQUIRED_ADDRESS
               if not (getattr(address, attr) or "").strip()]
    if len(missing) == len(_REQUIRED_ADDRESS):
        return NO_ADDRESS
    if missing:
        return "incomplete mailing address: no " + ", no ".join(missing)
    return None


class CheckAdapter:
    method = "check"

    def __init__(self, account: str = PLACEHOLDER_ACCOUNT, number_offset: int = 0):
        if number_offset < 0:
            raise ValueError("number_offset must not be negative")
        self.account = account
        self.number_offset = number_offset

    @classmethod
    def from_settings(cls, settings) -> "CheckAdapter":
        return cls(account=getattr(settings, "check_account", None) or PLACEHOLDER_ACCOUNT,
                   number_offset=int(getattr(settings, "check_number_offset", 0) or 0))

    # -- the scheme ------------------------------------------------------------------

    def check_number(self, line: PayoutLine) -> str:
        number = self.number_offset + line.item_id
        if line.item_id <= 0 or number > MAX_CHECK_NUMBER:
            raise ValueError(f"item {line.item_id}: check number {number} out of range")
        return str(number)

    def _split(self, lines: list[PayoutLine]) -> tuple[list[PayoutLine], list[ItemOutcome]]:
        """The lines that become checks (sorted by check number) and the outcomes of the
        others."""
        payable: list[PayoutLine] = []
        failed: list[ItemOutcome] = []
        for line in lines:
            problem = address_problem(line)
            if problem is None and line.amount <= 0:
                problem = "amount must be positive, not " + format_amount(line.amount, line.digits)
            if problem is not None:
                failed.append(ItemOutcome(line.item_id, FAILED, reason=problem))
            else:
                payable.append(line)
        payable.sort(key=lambda ln: self.number_offset + ln.item_id)
        numbers = [self.check_number(ln) for ln in payable]
        if len(set(numbers)) != len(numbers):
            raise ValueError("two lines of the batch have the same item id")
        return payable, failed

    @staticmethod
    def _memo(line: PayoutLine) -> str:
        return f"Cashback payout {line.reference}"

    def _issued(self, line: PayoutLine) -> ItemOutcome:
        return ItemOutcome(line.item_id, SUCCEEDED, provider_item_id=self.check_number(line),
                           provider_status=ISSUED)

    @staticmethod
    def _check_ctx(ctx: BatchContext) -> None:
        if ctx.method != CheckAdapter.method:
            raise ValueError(f"a {ctx.method!r} batch given to the check adapter")

    # -- the adapter interface -------------------------------------------------------

    def submit(self, ctx: BatchContext, lines: list[PayoutLine]) -> BatchResult:
        self._check_ctx(ctx)
        payable, failed = self._split(lines)
        issue_date = ctx.payout_date.isoformat()
        # (_split checked every number's range; the cells take them as the ints they are.)
        positive_pay = [
            (self.account, numeric(self.number_offset + ln.item_id), issue_date,
             amount(ln.amount, ln.digits), ln.address.name)
            for ln in payable
        ]
        checks = [
            (numeric(self.number_offset + ln.item_id), ln.address.name, ln.address.line1,
             ln.address.line2, ln.address.city, ln.address.region, ln.address.postal_code,
             ln.address.country, amount(ln.amount, ln.digits), ln.currency, self._memo(ln),
             issue_date)
            for ln in payable
        ]
        checks_name = checks_file_name(ctx.idempotency_key)
        write_csv_atomic(Path(ctx.outbox) / positive_pay_file_name(ctx.idempotency_key),
                         POSITIVE_PAY_COLUMNS, positive_pay, replace_different=False)
        write_csv_atomic(Path(ctx.outbox) / checks_name, CHECK_COLUMNS, checks,
                         replace_different=False)
        outcomes = [self._issued(ln) for ln in payable] + failed
        return BatchResult(SUBMITTED, provider_batch_id=checks_name,
                           outcomes=_in_order(outcomes, lines), done=True)

    def poll(self, ctx: BatchContext, provider_batch_id: str,
             lines: list[PayoutLine]) -> BatchResult:
        """What the files in the outbox say. Missing or not matching the batch: UNKNOWN
        (the run then asks `find`, and re-submitting writes the very same files)."""
        result = self.find(ctx, lines)
        if result.state == REFUSED:
            return BatchResult(UNKNOWN, provider_batch_id=provider_batch_id, error=result.error)
        return result

    def find(self, ctx: BatchContext, lines: list[PayoutLine]) -> BatchResult:
        """SUBMITTED if both files exist and the check file lists every check of the batch
        with its amount; REFUSED (with the reason) if not, so the batch may be written
        again, identically."""
        self._check_ctx(ctx)
        payable, failed = self._split(lines)
        checks_name = checks_file_name(ctx.idempotency_key)
        checks_path = Path(ctx.outbox) / checks_name
        pay_path = Path(ctx.outbox) / positive_pay_file_name(ctx.idempotency_key)
        for path in (pay_path, checks_path):
            if not path.exists():
                return BatchResult(REFUSED, error=f"{path.name} not found in the outbox")
        try:
            listed = _listed_checks(checks_path)
        except ValueError as exc:
            return BatchResult(REFUSED, error=str(exc))
        for ln in payable:
            number = self.check_number(ln)
            expected = (format_amount(ln.amount, ln.digits), ln.currency)
            if listed.get(number) != expected:
                return BatchResult(
                    REFUSED, error=f"{checks_name} lacks check {number} for item "
                                   f"{ln.item_id} ({expected[0]} {expected[1]})")
        outcomes = [self._issued(ln) for ln in payable] + failed
        return BatchResult(SUBMITTED, provider_batch_id=checks_name,
                           outcomes=_in_order(outcomes, lines), done=True)


def _listed_checks(path: Path) -> dict[str, tuple[str, str]]:
    """check_number -> (amount, currency) of a check file."""
    try:
        records = read_csv(path)
    except (OSError, CsvFormatError) as exc:
        raise ValueError(f"{path.name} is unreadable: {exc}") from None
    if not records:
        raise ValueError(f"{path.name} is empty")
    _, header = records[0]
    try:
        at = {name: header.index(name) for name in ("check_number", "amount", "currency")}
    except ValueError:
        raise ValueError(f"{path.name} lacks the check-file columns") from None
    listed: dict[str, tuple[str, str]] = {}
    for _, row in records[1:]:
        if len(row) != len(header):
            raise ValueError(f"{path.name} has a malformed row")
        listed[row[at["check_number"]]] = (row[at["amount"]], uncell(row[at["currency"]]))
    return listed


def _in_order(outcomes: list[ItemOutcome], lines: list[PayoutLine]) -> list[ItemOutcome]:
    position = {ln.item_id: i for i, ln in enumerate(lines)}
    return sorted(outcomes, key=lambda o: position[o.item_id])
