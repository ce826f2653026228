"""Bank transfers that come back: the bank's return notice (settlement/exchanges/zengin.py,
`bank-returns-*.txt` beside our transfer files) applied to the exchanges it names.

- Before the transfer date the exchange is still `processing`: it fails and the points go
  back (reserved -> available), as any failure.
- After it the exchange was `delivered` (reserved -> exchanged): it becomes `failed` with
  provider_status RETURNED and a compensating entry moves the points back (exchanged ->
  available). The delivered entry stands: the ledger says what happened, then what undid it.
- Idempotent: each move is guarded on the exchange's state and keyed by the exchange, so the
  same notice read twice (the bank sends it again, or we die before filing it away) changes
  nothing the second time.
- All or nothing: a notice naming an exchange that is not one of our transfers (another
  tenant's, a gift code, an amount or account that differs) is refused whole, with the
  line and field, in `<notice>.refused`; nothing of it is applied.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from settlement import failpoints
from settlement.db import tenant_session
from settlement.exchanges import zengin
from settlement.exchanges.models import Exchange
from settlement.exchanges.service import _release_campaign, lock_member, return_points
from settlement.ledger.writer import Leg, post_entry
from settlement.models import Tenant
from settlement.states import ExchangeStatus
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import policy_of

NOTICES = "bank-returns-*.txt"
FILED = "returns-applied"  # sub-folder the applied notices are moved to
RETURNED = "RETURNED"


@dataclass
class Applied:
    before_date: int = 0  # processing exchanges failed (points reserved -> available)
    after_delivery: int = 0  # delivered exchanges returned (exchanged -> available)
    already: int = 0  # returned by an earlier reading of a notice


def _check(header: dict[str, str], row: zengin.Returned, exchange: Exchange | None,
           policy: TenantPolicy) -> None:
    if exchange is None or exchange.kind != "bank_transfer":
        raise zengin.NoticeError(row.line, "customer_code1",
                                 f"{row.reference} is not a bank transfer of this site")
    destination = json.loads(exchange.destination)
    if (row.bank_code, row.branch_code, row.account_number) != (
            destination["bank_code"], destination["branch_code"],
            destination["account_number"]):
        raise zengin.NoticeError(row.line, "account_number", f"exchange {exchange.id} was "
                                 "sent to another account")
    if row.amount != exchange.value + exchange.bonus_value:
        raise zengin.NoticeError(row.line, "amount", f"exchange {exchange.id} transferred "
                                 f"{exchange.value + exchange.bonus_value} yen, not "
                                 f"{row.amount}")
    exit_ = policy.exits.get(exchange.exit)
    if exit_ is None or exit_.originator is None:
        raise zengin.NoticeError(row.line, "customer_code1", f"exchange {exchange.id}'s exit "
                                 f"{exchange.exit} is no longer a bank exit of this site")
    if header["client_code"] != exit_.originator.client_code:
        raise zengin.NoticeError(1, "client_code", f"{header['client_code']} is not the "
                                 f"client code of exit {exchange.exit}")
    if header["transfer_date"] != f"{exchange.credit_on:%m%d}":
        raise zengin.NoticeError(1, "transfer_date", f"exchange {exchange.id} was transferred "
                                 f"on {exchange.credit_on:%m%d}, not "
                                 f"{header['transfer_date']}")
    if exchange.status not in (ExchangeStatus.PROCESSING, ExchangeStatus.DELIVERED) and not (
            exchange.status == ExchangeStatus.FAILED and exchange.provider_status == RETURNED):
        raise zengin.NoticeError(row.line, "customer_code1", f"exchange {exchange.id} is "
                                 f"{exchange.status}: it was never transferred")


def apply_return_notice(session: Session, tenant_id: int, policy: TenantPolicy,
                        raw: bytes) -> Applied:
    """Check the whole notice, then apply each return; the caller commits."""
    header, rows = zengin.read_return_notice(raw)
    found = {e.id: e for e in session.scalars(select(Exchange).where(
        Exchange.tenant_id == tenant_id, Exchange.id.in_([r.reference for r in rows])))}
    for row in rows:
        _check(header, row, found.get(row.reference), policy)
    applied = Applied()
    for row in rows:
        exchange = found[row.reference]
        lock_member(session, tenant_id, exchange.member_id)
        reason = f"the bank returned the transfer on {row.returned_mmdd[:2]}-" \
                 f"{row.returned_mmdd[2:]}: {row.reason}"
        if return_points(session, policy, exchange, ExchangeStatus.FAILED, reason,
                         from_states=(ExchangeStatus.PROCESSING,)):
            applied.before_date += 1
        elif _return_delivered(session, policy, exchange, reason):
            applied.after_delivery += 1
        else:
            applied.already += 1
            continue
        session.execute(update(Exchange).where(
            Exchange.tenant_id == tenant_id, Exchange.id == exchange.id)
            .values(provider_status=RETURNED).execution_options(synchronize_session=False))
    return applied


def _return_delivered(session: Session, policy: TenantPolicy, exchange: Exchange,
                      reason: str) -> bool:
    """delivered -> failed, and the compensating entry exchanged -> available. False if
    the exchange was not delivered (returned already)."""
    moved = session.execute(update(Exchange).where(
        Exchange.tenant_id == exchange.tenant_id, Exchange.id == exchange.id,
        Exchange.status == ExchangeStatus.DELIVERED)
        .values(status=ExchangeStatus.FAILED, failure_reason=reason[:200], updated_at=func.now())
        .execution_options(synchronize_session=False))
    if moved.rowcount != 1:
        return False
    _release_campaign(session, exchange)
    post_entry(session, exchange.tenant_id, f"exchange:{exchange.id}:returned",
               "exchange_returned",
               [Leg("exchanged", exchange.member_id, policy.currency, -exchange.debit),
                Leg("available", exchange.member_id, policy.currency, exchange.debit)],
               f"exchange {exchange.id} ({exchange.exit}) returned by the bank after "
               "delivery: points back to balance")
    return True


def take_return_notices(engine: Engine, tenant_id: int, folder: Path) -> dict[str, int]:
    """Apply every notice in `folder`, each in its own transaction, then file it away under
    FILED. Returns what was applied; a refused notice stays, with its `.refused` reason."""
    totals = {"notices": 0, "before_date": 0, "after_delivery": 0, "already": 0,
              "refused": 0}
    for path in sorted(folder.glob(NOTICES)) if folder.is_dir() else []:
        refused = path.with_name(path.name + ".refused")
        if refused.exists():
            totals["refused"] += 1
            continue
        try:
            raw = path.read_bytes()
        except FileNotFoundError:  # another job filed it away meanwhile
            continue
        with tenant_session(engine, tenant_id) as session:
            policy = policy_of(session.get(Tenant, tenant_id))
            try:
                applied = apply_return_notice(session, tenant_id, policy, raw)
            except zengin.NoticeError as exc:
                session.rollback()
                refused.write_text(f"{path.name} refused, nothing applied: {exc}\n")
                totals["refused"] += 1
                continue
            session.commit()
        # Committed; a death here leaves the notice in place, and reading it again
        # changes nothing (every move is guarded on the exchange's state).
        failpoints.reach("exchange.returns_applied")
        (folder / FILED).mkdir(exist_ok=True)
        try:
            os.replace(path, folder / FILED / path.name)
        except FileNotFoundError:
            pass  # a job at the same time read it too, and filed it first
        totals["notices"] += 1
        for name in ("before_date", "after_delivery", "already"):
            totals[name] += getattr(applied, name)
    return totals
