"""The exchange tables (migration 0014), on the schema's one declarative base."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (BigInteger, Date, DateTime, Integer, LargeBinary, PrimaryKeyConstraint,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from settlement.models import Base, _created, _id
from settlement.states import ExchangeStatus

STATES = tuple(ExchangeStatus)
# What counts against caps and budgets.
LIVE = (ExchangeStatus.REQUESTED, ExchangeStatus.PROCESSING, ExchangeStatus.DELIVERED)


class Exchange(Base):
    """A member's exchange of points through an exit. `points` buy `value` (plus a
    campaign's `bonus_value`); `fee_points` on top; `debit` is what left the member's
    available balance, in ledger units (yen): (points + fee_points) / points_per_unit."""

    __tablename__ = "exchanges"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    # The member's own number for it, 1, 2, 3... (what the API shows under the member;
    # settlement/exchanges/service.py takes it under the member's lock).
    number: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    exit: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    partner: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # an ExchangeStatus
    value: Mapped[int] = mapped_column(BigInteger)
    bonus_value: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    fee_points: Mapped[int] = mapped_column(BigInteger)
    debit: Mapped[int] = mapped_column(BigInteger)
    campaign: Mapped[str | None] = mapped_column(String(63))
    destination: Mapped[str | None] = mapped_column(Text)  # JSON
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    requested_on: Mapped[dt.date] = mapped_column(Date)
    credit_on: Mapped[dt.date] = mapped_column(Date)
    batch_id: Mapped[int | None] = mapped_column(BigInteger)
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    provider_status: Mapped[str | None] = mapped_column(String(32))
    provider_item_id: Mapped[str | None] = mapped_column(String(64))
    code_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _created()
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "member_id", "idempotency_key", name="uq_exchanges_key"),
        UniqueConstraint("tenant_id", "member_id", "number", name="uq_exchanges_number"),
    )

    @property
    def total_points(self) -> int:
        return self.points + self.fee_points


class ExchangeBatch(Base):
    """The exchanges of one exit (and crediting date) handed to its partner together."""

    __tablename__ = "exchange_batches"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    exit: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    credit_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # an ExchangeBatchStatus
    idempotency_key: Mapped[str] = mapped_column(String(64))
    provider_batch_id: Mapped[str | None] = mapped_column(String(128))
    items: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = _created()
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_exchange_batches_key"),
    )


class CampaignUsage(Base):
    """What a campaign's first-come budget has granted (live exchanges only)."""

    __tablename__ = "campaign_usage"
    tenant_id: Mapped[int] = mapped_column(Integer)
    campaign: Mapped[str] = mapped_column(String(63))
    used_value: Mapped[int] = mapped_column(BigInteger, default=0)
    used_count: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "campaign"),)
