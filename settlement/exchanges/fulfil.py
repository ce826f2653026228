"""Fulfilment: requested exchanges handed to their partners in batches by exit and
crediting date, with the payout runs' protocol (settlement/runs/execute.py).

- The points were reserved when the member asked. A job claims the requested exchanges of
  an exit into a batch (`submitting`) and marks them `processing` in one transaction that
  commits BEFORE any partner is called: a worker that dies mid-call leaves exchanges whose
  outcome is unknown, never ones that look untouched, and a member can no longer cancel
  them.
- Every call to a partner can be repeated without a second delivery. Gift codes: each
  exchange has one `creationRequestId`, and Amazon answers a repeat with the card it made
  the first time, so an exchange whose answer was lost is asked again with the same id;
  after `GIFT_MAX_ATTEMPTS` answers without a verdict the request is cancelled
  (CancelGiftCard) before the points go back. Files (Zengin, points partners) are written
  atomically under the batch's key, the same bytes every time, never replaced by others.
- Each outcome moves the money in the transaction that records it: delivered, reserved ->
  exchanged; failed, reserved -> available (the compensating entry).
- The crediting date is honoured: a bank transfer's file names it as the transfer date,
  and an exchange becomes `delivered` on that date, not before. The bank's return notices
  (settlement/exchanges/returns.py) are applied first: before the date they fail the
  transfer, after it they undo the delivery with a compensating entry.
- Failpoints (settlement/failpoints.py, EXCHANGE_POINTS) mark where a killed worker is
  tested to lose nothing and send nothing twice (tests/exchanges/test_faults.py).
- One live job per batch: the batch's advisory lock on PostgreSQL (`batch_hold`).

Batch states: `submitting` (claimed; the partner may or may not have it) -> `submitted`
(the file is written; waiting for the date or the partner's answer file) -> `completed`
(every exchange delivered or failed). Gift-code batches go from `submitting` straight to
`completed` once each card is made or refused.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from settlement import failpoints
from settlement.db import tenant_session
from settlement.exchanges import zengin
from settlement.exchanges.amazon import (CARD_NOT_FOUND, FAILURE, FULFILLED, SUCCESS,
                                         IncentivesClient, creation_request_id)
from settlement.exchanges.codes import seal
from settlement.exchanges.models import Exchange, ExchangeBatch
from settlement.exchanges.returns import take_return_notices
from settlement.exchanges.service import deliver, return_points
from settlement.models import Member, Tenant
from settlement.payouts.base import FAILED, SUCCEEDED, PayoutLine
from settlement.payouts.csvsafe import write_bytes_atomic, write_csv_atomic
from settlement.payouts.points import (ResponseFileError, TRANSFER_COLUMNS, ingest_response,
                                       response_file_name, transfer_file_name)
from settlement.runs.execute import batch_hold
from settlement.sql import transaction_lock
from settlement.states import ExchangeBatchStatus, ExchangeStatus
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import policy_of

GIFT_MAX_ATTEMPTS = 5
HOLD_NAMESPACE = 0x5E78 << 48  # beside the run batches' locks (0x5E77)
CLAIM_NAMESPACE = 0x5E79 << 48
BUSY = "busy"
REFUNDED = "RefundedToPurchaser"  # a cancelled card's status


@dataclass
class Partners:
    """How this process reaches the exits' partners."""

    amazon: IncentivesClient
    outbox: str
    code_key: bytes
    amazon_partner_id: str = "Sandb"


def claim(session: Session, tenant_id: int, today: dt.date) -> list[int]:
    """Batch the requested exchanges due to go: one batch per exit and crediting date."""
    # One claimer per tenant at a time (two clocks): the second, once the first has
    # committed, finds nothing left to claim instead of a batch key already taken.
    transaction_lock(session, CLAIM_NAMESPACE | tenant_id)
    groups = session.execute(
        select(Exchange.exit, Exchange.kind, Exchange.credit_on).where(
            Exchange.tenant_id == tenant_id, Exchange.status == ExchangeStatus.REQUESTED,
            Exchange.requested_on <= today)
        .group_by(Exchange.exit, Exchange.kind, Exchange.credit_on)
        .order_by(Exchange.exit, Exchange.credit_on)).all()
    made = []
    for exit_name, kind, credit_on in groups:
        seq = session.scalar(select(func.count()).select_from(ExchangeBatch).where(
            ExchangeBatch.tenant_id == tenant_id, ExchangeBatch.exit == exit_name,
            ExchangeBatch.credit_on == credit_on)) + 1
        batch = ExchangeBatch(tenant_id=tenant_id, exit=exit_name, kind=kind,
                              credit_on=credit_on, status=ExchangeBatchStatus.SUBMITTING,
                              items=0, attempts=0,
                              idempotency_key=f"x{tenant_id}-{exit_name}-"
                                              f"{credit_on:%Y%m%d}-{seq}",
                              submitted_at=dt.datetime.now(dt.timezone.utc))
        session.add(batch)
        session.flush()
        # Guarded on `requested`: an exchange the member cancelled meanwhile stays out.
        batch.items = session.execute(update(Exchange).where(
            Exchange.tenant_id == tenant_id, Exchange.status == ExchangeStatus.REQUESTED,
            Exchange.exit == exit_name, Exchange.credit_on == credit_on,
            Exchange.requested_on <= today)
            .values(status=ExchangeStatus.PROCESSING, batch_id=batch.id, updated_at=func.now())
            .execution_options(synchronize_session=False)).rowcount
        made.append(batch.id)
    return made


def open_batches(session: Session, tenant_id: int) -> list[int]:
    return list(session.scalars(select(ExchangeBatch.id).where(
        ExchangeBatch.tenant_id == tenant_id, ExchangeBatch.status != ExchangeBatchStatus.COMPLETED)
        .order_by(ExchangeBatch.id)))


def fulfil_exchanges(engine: Engine, tenant_id: int, partners: Partners,
                     today: dt.date) -> dict[str, int]:
    """The job: claim what is due, then work every open batch. Returns batches by state."""
    with tenant_session(engine, tenant_id) as session:
        claim(session, tenant_id, today)
        session.commit()
        batch_ids = open_batches(session, tenant_id)
        folder = Path(partners.outbox) / session.get(Tenant, tenant_id).slug / "exchanges"
    states: dict[str, int] = {}
    returns = take_return_notices(engine, tenant_id, folder)
    if returns["notices"] or returns["refused"]:
        states["bank_returns"] = returns["before_date"] + returns["after_delivery"]
        states["bank_notices_refused"] = returns["refused"]
    for batch_id in batch_ids:
        state = work_batch(engine, tenant_id, batch_id, partners, today)
        states[state] = states.get(state, 0) + 1
    return states


def work_batch(engine: Engine, tenant_id: int, batch_id: int, partners: Partners,
               today: dt.date) -> str:
    with batch_hold(engine, batch_id, namespace=HOLD_NAMESPACE) as free:
        if not free:
            return BUSY
        with tenant_session(engine, tenant_id, expire_on_commit=False) as session:
            batch = session.get(ExchangeBatch, (tenant_id, batch_id))
            if batch.status == ExchangeBatchStatus.COMPLETED:
                return batch.status
            policy = policy_of(session.get(Tenant, tenant_id))
            work = {"gift_code": _gift_codes, "bank_transfer": _bank_transfers,
                    "points_transfer": _points_transfers}[batch.kind]
            work(session, policy, batch, partners, today)
            _complete_if_done(session, batch)
            session.commit()
            return batch.status


def _items(session: Session, batch: ExchangeBatch) -> list[Exchange]:
    return list(session.scalars(select(Exchange).where(
        Exchange.tenant_id == batch.tenant_id, Exchange.batch_id == batch.id,
        Exchange.status == ExchangeStatus.PROCESSING).order_by(Exchange.id)))


def _complete_if_done(session: Session, batch: ExchangeBatch) -> None:
    left = session.scalar(select(func.count()).select_from(Exchange).where(
        Exchange.tenant_id == batch.tenant_id, Exchange.batch_id == batch.id,
        Exchange.status == ExchangeStatus.PROCESSING))
    if not left:
        batch.status = ExchangeBatchStatus.COMPLETED
    session.flush()


# -- gift codes --------------------------------------------------------------------------

def _gift_codes(session: Session, policy: TenantPolicy, batch: ExchangeBatch,
                partners: Partners, today: dt.date) -> None:
    """One CreateGiftCard per exchange; each outcome committed before the next call."""
    for exchange in _items(session, batch):
        request_id = creation_request_id(partners.amazon_partner_id, batch.tenant_id,
                                         exchange.id)
        exchange.provider_ref = request_id
        exchange.attempts += 1
        session.commit()  # the attempt counts even if this worker dies in the call
        answer = partners.amazon.create(request_id, exchange.value + exchange.bonus_value,
                                        policy.currency)
        failpoints.reach("exchange.answered")
        if answer.status == SUCCESS and answer.claim_code and \
                answer.amount == exchange.value + exchange.bonus_value and \
                answer.card_status == FULFILLED:
            deliver(session, policy, exchange, provider_status=SUCCESS,
                    provider_item_id=answer.gc_id,
                    code_cipher=seal(partners.code_key, batch.tenant_id, exchange.id,
                                     answer.claim_code))
        elif answer.status == SUCCESS and answer.card_status == REFUNDED:
            # The id's card was cancelled (by _give_up, or by hand at Amazon): it can never
            # be spent, so the member gets the points back.
            return_points(session, policy, exchange, ExchangeStatus.FAILED,
                          "the gift card was cancelled at Amazon before it was delivered")
        elif answer.status == FAILURE:
            return_points(session, policy, exchange, ExchangeStatus.FAILED,
                          f"Amazon refused the gift card: {answer.reason}")
        else:
            exchange.provider_status = answer.error_code or answer.status
            batch.last_error = f"exchange {exchange.id}: {answer.reason}"[:500]
            if exchange.attempts >= GIFT_MAX_ATTEMPTS:
                _give_up(session, policy, exchange, partners, request_id)
        session.commit()


def _give_up(session: Session, policy: TenantPolicy, exchange: Exchange, partners: Partners,
             request_id: str) -> None:
    """No verdict after every attempt: cancel whatever Amazon may have made, and only when
    Amazon confirms there is no live card return the points."""
    answer = partners.amazon.cancel(request_id, exchange.provider_item_id)
    # Any other refusal (F2047 CancelRequestArrivedAfterTimeLimit: the card lives) keeps
    # the exchange processing: the next job asks for that card again.
    if answer.status == SUCCESS or answer.error_type == CARD_NOT_FOUND:
        return_points(session, policy, exchange, ExchangeStatus.FAILED,
                      f"no gift card after {exchange.attempts} attempts; the request was "
                      "cancelled at Amazon")


# -- bank transfers ----------------------------------------------------------------------

def _outbox(partners: Partners, session: Session, batch: ExchangeBatch) -> Path:
    slug = session.get(Tenant, batch.tenant_id).slug
    return Path(partners.outbox) / slug / "exchanges"


def _bank_transfers(session: Session, policy: TenantPolicy, batch: ExchangeBatch,
                    partners: Partners, today: dt.date) -> None:
    items = _items(session, batch)
    if not items:
        return
    if batch.status == ExchangeBatchStatus.SUBMITTING:
        transfers = [zengin.Transfer(reference=e.id, amount=e.value + e.bonus_value,
                                     **json.loads(e.destination)) for e in items]
        name = f"zengin-{batch.idempotency_key}.txt"
        body = zengin.write_file(policy.exits[batch.exit].originator, batch.credit_on,
                                 transfers)
        write_bytes_atomic(_outbox(partners, session, batch) / name, body,
                           replace_different=False)
        batch.status, batch.provider_batch_id = ExchangeBatchStatus.SUBMITTED, name
        for exchange in items:
            exchange.provider_status = "IN_FILE"
        failpoints.reach("exchange.file_written")
        session.commit()
    # Transfers the bank returned before the date were failed by their notice
    # (settlement/exchanges/returns.py) and are no longer among the items.
    failpoints.reach("exchange.answered")
    for exchange in items:
        if today >= batch.credit_on:  # the bank credits on the file's transfer date
            deliver(session, policy, exchange, provider_status="TRANSFERRED")


# -- points transfers --------------------------------------------------------------------

def _lines(session: Session, items: list[Exchange]) -> list[PayoutLine]:
    externals = dict(session.execute(select(Member.id, Member.external_id).where(
        Member.tenant_id == items[0].tenant_id,
        Member.id.in_({e.member_id for e in items}))).all()) if items else {}
    return [PayoutLine(item_id=e.id, reference=f"x{e.tenant_id}-{e.id}",
                       member=externals[e.member_id], amount=e.debit, currency="JPY",
                       digits=0, points=e.value + e.bonus_value,
                       destination=json.loads(e.destination)["account"], address=None)
            for e in items]


def _points_transfers(session: Session, policy: TenantPolicy, batch: ExchangeBatch,
                      partners: Partners, today: dt.date) -> None:
    items = _items(session, batch)
    if not items:
        return
    # The whole batch: the answer file names the exchanges already settled too.
    lines = _lines(session, list(session.scalars(select(Exchange).where(
        Exchange.tenant_id == batch.tenant_id, Exchange.batch_id == batch.id)
        .order_by(Exchange.id))))
    partner = policy.exits[batch.exit].partner
    folder = _outbox(partners, session, batch)
    if batch.status == ExchangeBatchStatus.SUBMITTING:
        rows = [(ln.reference, ln.destination, ln.points, ln.member, batch.credit_on.isoformat())
                for ln in lines]
        name = transfer_file_name(partner, batch.idempotency_key)
        write_csv_atomic(folder / name, TRANSFER_COLUMNS, rows, replace_different=False)
        batch.status, batch.provider_batch_id = ExchangeBatchStatus.SUBMITTED, name
        failpoints.reach("exchange.file_written")
        session.commit()
        return
    answer = folder / response_file_name(partner, batch.idempotency_key)
    if not answer.exists():
        return
    try:
        outcomes = {o.item_id: o for o in ingest_response(answer, lines)}
    except ResponseFileError as exc:
        batch.last_error = str(exc)[:500]  # nothing applied; an operator gets it corrected
        return
    failpoints.reach("exchange.answered")
    for exchange in items:
        outcome = outcomes[exchange.id]
        if outcome.status == FAILED:
            return_points(session, policy, exchange, ExchangeStatus.FAILED,
                          f"{partner} rejected the transfer: {outcome.reason}")
        elif outcome.status == SUCCEEDED:
            exchange.provider_status = outcome.provider_status
            if today >= batch.credit_on:
                deliver(session, policy, exchange, provider_status=outcome.provider_status)
