"""Planning a run: who is paid how much by which method, and who is skipped and why.

One set-based pass over the ledger: each member's available balance, less what was
confirmed after the cut-off, is their payable amount (a negative balance nets against new
earnings by construction). The plan is frozen in run_items and run_skips; what arrives
later never changes it. Its content hash binds the approval.
"""
from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import and_, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from settlement.errors import DomainError
from settlement.models import RunBatch, RunItem, SettlementRun, Tenant
from settlement.numbering import internal_id, take_number, take_numbers
from settlement.runs.batches import item_counts
from settlement.runs.calendar import cutoff_for, is_payout_date
from settlement.runs.lines import drop_lines, freeze_lines
from settlement.sql import drop_temp_tables, is_postgres, temp_table
from settlement.states import BatchStatus, BonusStatus, CommissionStatus, ItemStatus, RunStatus
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import policy_of

# Items per batch: PayPal takes at most 15,000 per payout batch; files are cut for handling.
BATCH_SIZES = {"paypal": 15_000, "check": 50_000, "amex_mr": 50_000, "bilt": 50_000}
SKIP_REASONS = ("negative_balance", "below_minimum", "no_mailing_address", "no_payout_method",
                "method_disabled", "missing_destination", "ineligible_destination",
                "below_points_minimum")


class RunError(DomainError):
    def __init__(self, code: str, message: str):
        super().__init__(code, message)


def _points_sql(policy: TenantPolicy, payout_date: dt.date) -> tuple[str, str]:
    """SQL for (points, skip reason or NULL) of a points method, from the policy's rates:
    points = floor(payable * rate / 10^digits), never more than the cash is worth."""
    scale = 10 ** policy.minor_digits
    amex = policy.payouts.methods.amex_mr
    rates = [r for r in policy.payouts.methods.bilt.rates
             if (r.valid_from is None or r.valid_from <= payout_date)
             and (r.valid_to is None or payout_date < r.valid_to)]
    tier_cases = []
    for rate in rates:
        if rate.tiers:
            tiers = ", ".join(f"'{t}'" for t in rate.tiers if t.isalnum())
            tier_cases.append(f"WHEN lower(bilt_tier) IN ({tiers}) THEN "
                              f"{int(rate.points_per_major_unit)}")
        else:
            tier_cases.append(f"WHEN 1 = 1 THEN {int(rate.points_per_major_unit)}")
    bilt_rate = f"(CASE {' '.join(tier_cases)} ELSE NULL END)" if tier_cases else "NULL"
    points = (f"CASE payout_method "
              f"WHEN 'amex_mr' THEN payable * {int(amex.points_per_major_unit)} / {scale} "
              f"WHEN 'bilt' THEN payable * {bilt_rate} / {scale} END")
    return points, bilt_rate


def _skip_sql(policy: TenantPolicy, bilt_rate: str) -> str:
    methods = policy.payouts.methods
    enabled = ", ".join(f"'{m}'" for m in methods.enabled()) or "''"
    cards = ", ".join(f"'{c}'" for c in methods.amex_mr.eligible_cards if c.isalnum()) or "''"
    address = ("address_line1 IS NULL OR city IS NULL OR postal_code IS NULL "
               "OR country IS NULL") if policy.payouts.require_mailing_address else "1 = 0"
    amex_points = f"payable * {int(methods.amex_mr.points_per_major_unit)} / " \
                  f"{10 ** policy.minor_digits}"
    return f"""CASE
      WHEN payable < 0 THEN 'negative_balance'
      WHEN payable < :minimum THEN 'below_minimum'
      WHEN {address} THEN 'no_mailing_address'
      WHEN payout_method IS NULL THEN 'no_payout_method'
      WHEN payout_method NOT IN ({enabled}) THEN 'method_disabled'
      WHEN payout_method = 'paypal' AND paypal_email IS NULL THEN 'missing_destination'
      WHEN payout_method = 'amex_mr' AND amex_account IS NULL THEN 'missing_destination'
      WHEN payout_method = 'amex_mr' AND (amex_card IS NULL OR lower(amex_card) NOT IN ({cards}))
           THEN 'ineligible_destination'
      WHEN payout_method = 'amex_mr' AND {amex_points} < {int(methods.amex_mr.minimum_points)}
           THEN 'below_points_minimum'
      WHEN payout_method = 'bilt' AND bilt_account IS NULL THEN 'missing_destination'
      WHEN payout_method = 'bilt' AND {bilt_rate} IS NULL THEN 'ineligible_destination'
      END"""


def plan_run(session: Session, tenant_id: int, payout_date: dt.date,
             planned_by: str) -> SettlementRun:
    # One planning at a time per tenant (the tenant's row is the lock), so that the check
    # below cannot pass for two plans at once.
    tenant = session.get(Tenant, tenant_id, with_for_update=True)
    policy = policy_of(tenant)
    if not is_payout_date(policy, payout_date):
        raise RunError("not_a_payout_date",
                       f"{payout_date.isoformat()} is not a payout date of {tenant.slug} "
                       f"(payout dates: {', '.join(policy.payouts.dates)})")
    same_date = session.scalar(select(SettlementRun.id).where(
        SettlementRun.tenant_id == tenant_id, SettlementRun.payout_date == payout_date,
        SettlementRun.status != RunStatus.CANCELLED).limit(1))
    if same_date is not None:
        raise RunError("run_exists",
                       f"a run for {payout_date.isoformat()} exists already")
    # A batch reserves its items when it is first submitted (attempts 0 -> 1, one
    # transaction): a pending batch never attempted still has its money in the balances.
    unsent_batch = select(RunBatch.id).where(
        RunBatch.tenant_id == SettlementRun.tenant_id, RunBatch.run_id == SettlementRun.id,
        RunBatch.status == BatchStatus.PENDING, RunBatch.attempts == 0).exists()
    unreserved = session.scalar(select(SettlementRun).where(
        SettlementRun.tenant_id == tenant_id,
        or_(SettlementRun.status.in_((RunStatus.PLANNED, RunStatus.APPROVED)),
            and_(SettlementRun.status == RunStatus.EXECUTING, unsent_batch))).limit(1))
    if unreserved is not None:
        # Its items are still in the members' available balances: a second plan would
        # count the same money again. Submitting its batches (which reserves them) or
        # cancelling it frees them.
        state = unreserved.status + (" with batches not yet reserved"
                                     if unreserved.status == RunStatus.EXECUTING else "")
        raise RunError("run_in_flight",
                       f"run {unreserved.number} for {unreserved.payout_date.isoformat()} is "
                       f"{state}; execute or cancel it before planning another")
    cutoff = cutoff_for(policy, payout_date)
    # The run counter stays locked until the plan commits: plans of a tenant follow one
    # another anyway (run_in_flight).
    run = SettlementRun(tenant_id=tenant_id, number=take_number(session, tenant_id, "run"),
                        payout_date=payout_date, cutoff_date=cutoff,
                        currency=policy.currency, status=RunStatus.PLANNED,
                        planned_by=planned_by)
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        raise RunError("run_exists",
                       f"a run for {payout_date.isoformat()} exists already") from None
    _freeze_plan(session, run, policy, tenant.slug)
    run.plan_hash = plan_hash(session, tenant_id, run.id)
    session.flush()
    return run


def _freeze_plan(session: Session, run: SettlementRun, policy: TenantPolicy,
                 slug: str) -> None:
    points, bilt_rate = _points_sql(policy, run.payout_date)
    scale = 10 ** policy.minor_digits
    p = {"t": run.tenant_id, "r": run.id, "cutoff": run.cutoff_date,
         "minimum": policy.minimum_payout_minor}
    temp_table(session, "plan", f"""
      WITH available AS (
        SELECT member_id, sum(amount) AS available FROM postings
        WHERE tenant_id = :t AND account = 'available' AND member_id IS NOT NULL
        GROUP BY member_id),
      late AS (
        -- Earnings confirmed after the cut-off wait for the next date: commissions, and
        -- referral bonuses earned after it.
        SELECT member_id, sum(late) AS late FROM (
          SELECT member_id, share_amount AS late FROM commissions
          WHERE tenant_id = :t AND status = '{CommissionStatus.CONFIRMED}'
            AND confirmed_on > :cutoff
            AND member_id IS NOT NULL
          UNION ALL
          SELECT member_id, amount FROM referral_bonuses
          WHERE tenant_id = :t AND status = '{BonusStatus.EARNED}' AND confirmed_on > :cutoff) l
        GROUP BY member_id),
      payable AS (
        -- sum() of BIGINT is NUMERIC in PostgreSQL: back to integers before any division.
        SELECT a.member_id, CAST(a.available - COALESCE(l.late, 0) AS BIGINT) AS payable
        FROM available a LEFT JOIN late l ON l.member_id = a.member_id)
      SELECT m.id AS member_id, p.payable, m.payout_method, m.paypal_email, m.amex_account,
             m.amex_card, m.bilt_account, m.bilt_tier, m.address_line1, m.city,
             m.postal_code, m.country
      FROM payable p JOIN members m ON m.tenant_id = :t AND m.id = p.member_id
      WHERE p.payable <> 0""", p, analyze="never")
    classified = f"""
      SELECT member_id, payable, payout_method, bilt_tier,
             {_skip_sql(policy, bilt_rate)} AS reason, {points} AS points,
             CASE payout_method WHEN 'paypal' THEN paypal_email WHEN 'amex_mr' THEN amex_account
                                WHEN 'bilt' THEN bilt_account END AS destination
      FROM plan"""
    session.execute(text(f"""
      INSERT INTO run_skips (tenant_id, run_id, member_id, reason, amount)
      SELECT :t, :r, member_id, reason, payable FROM ({classified}) c
      WHERE reason IS NOT NULL"""), p)
    # Points methods pay the cash the points are worth (rounded up, never above the
    # payable amount); the rest of a cent stays in the balance.
    amount = (f"CASE WHEN points IS NULL THEN payable ELSE "
              f"(points * {scale} + rate - 1) / rate END")
    sizes = " ".join(f"WHEN '{m}' THEN {n}" for m, n in BATCH_SIZES.items())
    temp_table(session, "payable", f"""
      SELECT member_id, payout_method AS method, {amount} AS amount, points, destination,
             (row_number() OVER (PARTITION BY payout_method ORDER BY member_id) - 1)
               / (CASE payout_method {sizes} ELSE 50000 END) AS seq
      FROM (SELECT c.*, CASE payout_method
                          WHEN 'amex_mr' THEN {int(policy.payouts.methods.amex_mr.points_per_major_unit)}
                          WHEN 'bilt' THEN {bilt_rate}
                        END AS rate
            FROM ({classified}) c) x
      WHERE reason IS NULL""", p, analyze="never")
    # The batches are cut now, so execution never rewrites the items: sender_batch_id and
    # file names derive from tenant, run, method and batch number.
    # Numbered in one block, in (method, seq) order.
    cuts = session.execute(text(
        "SELECT count(*) FROM (SELECT 1 FROM payable GROUP BY method, seq) b")).scalar_one()
    first = take_numbers(session, run.tenant_id, "batch", cuts) if cuts else 0
    session.execute(text(f"""
      INSERT INTO run_batches (tenant_id, number, run_id, method, seq, status, idempotency_key,
                               items, amount, points, attempts)
      SELECT :t, :first - 1 + row_number() OVER (ORDER BY method, seq), :r, method, seq,
             '{BatchStatus.PENDING}',
             :slug || '-run' || CAST(:r AS TEXT) || '-' || method || '-' || CAST(seq AS TEXT),
             count(*), sum(amount), COALESCE(sum(points), 0), 0
      FROM payable GROUP BY method, seq"""), {**p, "slug": slug, "first": first})
    for batch in session.scalars(select(RunBatch).where(RunBatch.tenant_id == run.tenant_id,
                                                        RunBatch.run_id == run.id)):
        batch.status_counts = {ItemStatus.PLANNED: batch.items}
    session.flush()
    session.execute(text(f"""
      INSERT INTO run_items (tenant_id, run_id, member_id, method, amount, points, destination,
                             batch_id, status)
      SELECT :t, :r, i.member_id, i.method, i.amount, i.points, i.destination, b.id,
             '{ItemStatus.PLANNED}'
      FROM payable i JOIN run_batches b
        ON b.tenant_id = :t AND b.run_id = :r AND b.method = i.method AND b.seq = i.seq"""), p)
    freeze_lines(session, run)
    drop_temp_tables(session, "plan", "payable")


_PG_PLAN_HASH = """
  SELECT encode(sha256(convert_to(
    coalesce((SELECT string_agg('item|' || member_id || '|' || method || '|' || amount || '|'
                                || coalesce(points::text, '') || '|' || coalesce(destination, ''),
                                E'\n' ORDER BY member_id)
              FROM run_items WHERE tenant_id = :t AND run_id = :r), '') || E'\n' ||
    coalesce((SELECT string_agg('skip|' || member_id || '|' || reason || '|' || amount,
                                E'\n' ORDER BY member_id)
              FROM run_skips WHERE tenant_id = :t AND run_id = :r), ''), 'UTF8')), 'hex')"""


def plan_hash(session: Session, tenant_id: int, run_id: int) -> str:
    """sha256 of the frozen plan (items and skips, in member order). PostgreSQL computes it
    where the rows are; SQLite streams them here. Each database agrees with itself, which
    is what binding an approval to a plan needs."""
    if is_postgres(session):
        return session.execute(text(_PG_PLAN_HASH), {"t": tenant_id, "r": run_id}).scalar_one()
    digest = hashlib.sha256()
    items = session.execute(text(
        "SELECT member_id, method, amount, points, destination FROM run_items "
        "WHERE tenant_id = :t AND run_id = :r ORDER BY member_id"),
        {"t": tenant_id, "r": run_id}).yield_per(10_000)
    for row in items:
        digest.update(("item|" + "|".join("" if v is None else str(v) for v in row) + "\n")
                      .encode())
    skips = session.execute(text(
        "SELECT member_id, reason, amount FROM run_skips WHERE tenant_id = :t AND run_id = :r "
        "ORDER BY member_id"), {"t": tenant_id, "r": run_id}).yield_per(10_000)
    for row in skips:
        digest.update(("skip|" + "|".join(str(v) for v in row) + "\n").encode())
    return digest.hexdigest()


def run_totals(session: Session, tenant_id: int, run_id: int) -> dict:
    """The plan's totals and the execution's progress, from the run's batches (a few rows
    however many items); a run planned before batches kept counts is counted item by item."""
    p = {"t": tenant_id, "r": run_id}
    batches = session.execute(select(RunBatch.method, RunBatch.items, RunBatch.amount,
                                     RunBatch.points, RunBatch.status_counts,
                                     RunBatch.status).where(
        RunBatch.tenant_id == tenant_id, RunBatch.run_id == run_id)).all()
    if any(b.status_counts is None for b in batches):
        by_method, progress = _totals_from_items(session, p)
    else:
        by_method, progress = {}, {}
        for b in batches:
            m = by_method.setdefault(b.method, {"members": 0, "amount": 0, "points": 0})
            m["members"] += b.items
            m["amount"] += b.amount
            m["points"] += b.points
            for status, n in item_counts(b.status, b.status_counts).items():
                progress[status] = progress.get(status, 0) + n
    skipped = {reason: {"members": int(n), "amount": int(a or 0)}
               for reason, n, a in session.execute(text(
                   "SELECT reason, count(*), sum(amount) FROM run_skips "
                   "WHERE tenant_id = :t AND run_id = :r GROUP BY reason"), p)}
    return {"members": sum(m["members"] for m in by_method.values()),
            "amount": sum(m["amount"] for m in by_method.values()),
            "by_method": by_method, "skipped": skipped,
            "progress": {"items": sum(progress.values()),
                         "done": int(progress.get(ItemStatus.SUCCEEDED, 0)),
                         "failed": int(progress.get(ItemStatus.FAILED, 0)),
                         "by_status": {k: int(v) for k, v in progress.items() if v}}}


def _totals_from_items(session: Session, p: dict) -> tuple[dict, dict]:
    by_method = {method: {"members": int(n), "amount": int(a or 0), "points": int(pts or 0)}
                 for method, n, a, pts in session.execute(text(
                     "SELECT method, count(*), sum(amount), sum(points) FROM run_items "
                     "WHERE tenant_id = :t AND run_id = :r GROUP BY method"), p)}
    progress = {status: int(n) for status, n in session.execute(text(
        "SELECT status, count(*) FROM run_items WHERE tenant_id = :t AND run_id = :r "
        "GROUP BY status"), p)}
    return by_method, progress


def get_run(session: Session, tenant_id: int, run_id: int, *,
            lock: bool = False) -> SettlementRun:
    """The run of internal id `run_id` (the API and the command line find it by its number
    first: run_id_of); `lock` takes its row for the transaction (status changes read the
    status under the lock, so of two simultaneous approvals exactly one wins)."""
    query = select(SettlementRun).where(SettlementRun.tenant_id == tenant_id,
                                        SettlementRun.id == run_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    run = session.scalar(query)
    if run is None:
        raise RunError("not_found", f"no settlement run {run_id}")
    return run


def run_id_of(session: Session, tenant_id: int, number: int) -> int:
    """The internal id of the tenant's run numbered `number` (what the API and the command
    line call it); RunError not_found for a number the tenant has not used."""
    found = internal_id(session, SettlementRun, tenant_id, number)
    if found is None:
        raise RunError("not_found", f"no settlement run {number}")
    return found


def approve_run(session: Session, tenant_id: int, run_id: int, approver: str,
                expected_hash: str | None = None) -> SettlementRun:
    """Four eyes: a principal other than the planner approves this exact plan."""
    run = get_run(session, tenant_id, run_id, lock=True)
    if run.status != RunStatus.PLANNED:
        raise RunError("not_planned", f"run {run.number} is {run.status}, not planned")
    if approver == run.planned_by:
        raise RunError("same_principal", "the planner cannot approve their own plan")
    current = plan_hash(session, tenant_id, run_id)
    if current != run.plan_hash:
        raise RunError("plan_changed", "the plan's content changed after planning")
    if expected_hash is not None and expected_hash != current:
        raise RunError("plan_hash_mismatch",
                       "the plan_hash approved is not the plan's content hash")
    run.status, run.approved_by = RunStatus.APPROVED, approver
    run.approved_at = dt.datetime.now(dt.timezone.utc)
    session.flush()
    return run


def cancel_run(session: Session, tenant_id: int, run_id: int, by: str) -> SettlementRun:
    run = get_run(session, tenant_id, run_id, lock=True)
    if run.status != RunStatus.PLANNED:
        raise RunError("not_planned", f"only a planned run can be cancelled; "
                                           f"run {run.number} is {run.status}")
    run.status, run.cancelled_by = RunStatus.CANCELLED, by
    drop_lines(session, tenant_id, run_id)
    session.flush()
    return run


def items_page(session: Session, tenant_id: int, run_id: int, *, status: str | None,
               method: str | None, after: int, limit: int) -> list[RunItem]:
    """Items in member order, after the member of internal id `after` (0: from the
    start): a run pays a member once, so the member names the item (the API shows no
    item id), and (tenant, run, member) is an index."""
    query = select(RunItem).where(RunItem.tenant_id == tenant_id, RunItem.run_id == run_id,
                                  RunItem.member_id > after)
    if status:
        query = query.where(RunItem.status == status)
    if method:
        query = query.where(RunItem.method == method)
    return list(session.scalars(query.order_by(RunItem.member_id).limit(limit)))
