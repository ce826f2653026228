"""The schema, one declarative base for every slice.

Every table but `tenants` carries `tenant_id`, and it leads every key and index so that the
tables can be distributed by tenant (Citus) without reshaping. Amounts are BigInteger minor
units. On PostgreSQL the primary keys are (tenant_id, id); SQLite can only generate ids for
a single-column INTEGER PRIMARY KEY, so there the migration keeps `id` alone as the key and
adds a unique (tenant_id, id). The mapping below names (tenant_id, id) on both.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    JSON,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from settlement.states import BonusStatus, CommissionStatus, RunStatus, sql_in

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


def _id() -> Mapped[int]:
    return mapped_column(BigId, autoincrement=True)


def _created() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    policy: Mapped[str] = mapped_column(Text)  # the validated policy, as JSON
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _created()


class ApiKey(Base):
    __tablename__ = "api_keys"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    # The tenant's own number for it (settlement/numbering.py): what the API shows.
    number: Mapped[int] = mapped_column(BigInteger)
    prefix: Mapped[str] = mapped_column(String(16))  # public part, finds the row
    secret_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the whole key
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = _created()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("prefix", name="uq_api_keys_prefix"),
        UniqueConstraint("tenant_id", "number", name="uq_api_keys_number"),
    )


class TenantCounter(Base):
    """The last public number a tenant's objects of one kind got (settlement/numbering.py)."""

    __tablename__ = "tenant_counters"
    tenant_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    last: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "kind"),)


class AuditEvent(Base):
    """Append-only: who did what, to which object, when."""

    __tablename__ = "audit_log"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    at: Mapped[dt.datetime] = _created()
    principal: Mapped[str] = mapped_column(String(64))  # "key:<id>" or "cli:<user>"
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),)


class Retailer(Base):
    __tablename__ = "retailers"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    # Overrides the network's holding period (policy `networks.X.confirm_after_days`).
    confirm_after_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = _created()
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "slug", name="uq_retailers_slug"),
    )


class RetailerNetworkId(Base):
    """How a network names a retailer (its advertiser id), per report source."""

    __tablename__ = "retailer_network_ids"
    tenant_id: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    retailer_id: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "source", "external_id"),)


class Member(Base):
    __tablename__ = "members"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    external_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    joined_at: Mapped[dt.date | None] = mapped_column(Date)
    referred_by: Mapped[str | None] = mapped_column(String(128))  # referrer's external id
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))
    payout_method: Mapped[str | None] = mapped_column(String(16))
    paypal_email: Mapped[str | None] = mapped_column(String(320))
    amex_account: Mapped[str | None] = mapped_column(String(64))
    amex_card: Mapped[str | None] = mapped_column(String(32))
    bilt_account: Mapped[str | None] = mapped_column(String(64))
    bilt_tier: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _created()
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "external_id", name="uq_members_external_id"),
    )


class ShareRule(Base):
    """How much of a commission the member gets. Resolved once at ingest (see rules.py)."""

    __tablename__ = "share_rules"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    # The tenant's own number for it (settlement/numbering.py): what the API shows.
    number: Mapped[int] = mapped_column(BigInteger)
    retailer_id: Mapped[int | None] = mapped_column(BigInteger)
    category: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))  # percent_of_sale|percent_of_commission|fixed
    rate_ppm: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)  # exclusive
    priority: Mapped[int] = mapped_column(Integer, default=0)
    category_only: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = _created()
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),
                      UniqueConstraint("tenant_id", "number", name="uq_share_rules_number"))


class Report(Base):
    __tablename__ = "reports"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    # The tenant's own number for it (settlement/numbering.py): what the API shows. Taken
    # when the upload is stored whole (None while it is being received), so that the
    # counter is not held for the length of an upload.
    number: Mapped[int | None] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(16))
    media: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(80))  # network reports: the network account
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # a ReportStatus
    as_of: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    lines: Mapped[int] = mapped_column(BigInteger, default=0)
    inserted: Mapped[int] = mapped_column(BigInteger, default=0)
    updated: Mapped[int] = mapped_column(BigInteger, default=0)
    unchanged: Mapped[int] = mapped_column(BigInteger, default=0)
    stale: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    unattributed: Mapped[int] = mapped_column(BigInteger, default=0)
    unmatched: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    # Processing attempts begun; the watchdog fails a report whose jobs keep dying.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = _created()
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "source", "sha256", name="uq_reports_content"),
        UniqueConstraint("tenant_id", "number", name="uq_reports_number"),
    )


class ReportChunk(Base):
    """The uploaded bytes, as received, in order: the database is the record of what came."""

    __tablename__ = "report_chunks"
    tenant_id: Mapped[int] = mapped_column(Integer)
    report_id: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "report_id", "seq"),)


class ReportError(Base):
    __tablename__ = "report_errors"
    tenant_id: Mapped[int] = mapped_column(Integer)
    report_id: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(Integer)
    line: Mapped[int | None] = mapped_column(BigInteger)
    field: Mapped[str | None] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "report_id", "seq"),)


class Commission(Base):
    """Current state of one network transaction; its history is in commission_events and its
    money in the ledger (entry_id: the entry that first carried it)."""

    __tablename__ = "commissions"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    source: Mapped[str] = mapped_column(String(80))  # network reports: the network account
    transaction_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str | None] = mapped_column(String(128))
    original_transaction_id: Mapped[str | None] = mapped_column(String(128))
    member_external_id: Mapped[str | None] = mapped_column(String(128))
    member_id: Mapped[int | None] = mapped_column(BigInteger)
    retailer_id: Mapped[int] = mapped_column(BigInteger)
    category: Mapped[str | None] = mapped_column(String(100))
    event_date: Mapped[dt.date] = mapped_column(Date)
    sale_amount: Mapped[int] = mapped_column(BigInteger)  # minor units, rounded once
    commission_amount: Mapped[int] = mapped_column(BigInteger)  # minor units, rounded once
    # As the network stated them, in ten-thousandths of the major unit (networks send up to
    # 4 decimals); the share is computed from these.
    sale_precise: Mapped[int] = mapped_column(BigInteger)
    commission_precise: Mapped[int] = mapped_column(BigInteger)
    share_amount: Mapped[int] = mapped_column(BigInteger)
    margin_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # a CommissionStatus
    rule_id: Mapped[int | None] = mapped_column(BigInteger)
    # The as-of time of the report that last changed it, in epoch microseconds: an integer,
    # so that both databases compare it exactly (stale lines are those older than this).
    as_of_us: Mapped[int] = mapped_column(BigInteger)
    report_id: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int | None] = mapped_column(BigInteger)  # None: it carried no money
    confirmed_on: Mapped[dt.date | None] = mapped_column(Date)  # in the tenant's timezone
    # A line the network sent without a status confirms on this date unless reversed first.
    confirm_after: Mapped[dt.date | None] = mapped_column(Date)
    # A correction whose original was never seen: it carries no money until that arrives.
    awaiting_original: Mapped[bool] = mapped_column(Boolean, default=False,
                                                    server_default=false())
    version: Mapped[int] = mapped_column(Integer, default=1)
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "source", "transaction_id", name="uq_commissions_txn"),
        Index("ix_commissions_member", "tenant_id", "member_id"),
        Index("ix_commissions_unattributed", "tenant_id", "member_external_id",
              sqlite_where=text("member_id IS NULL"),
              postgresql_where=text("member_id IS NULL")),
        Index("ix_commissions_held", "tenant_id", "confirm_after",
              sqlite_where=text(f"status = '{CommissionStatus.PENDING}' "
                                "AND confirm_after IS NOT NULL"),
              postgresql_where=text(f"status = '{CommissionStatus.PENDING}' "
                                    "AND confirm_after IS NOT NULL")),
        Index("ix_commissions_awaiting", "tenant_id", "source", "original_transaction_id",
              sqlite_where=text("awaiting_original"),
              postgresql_where=text("awaiting_original")),
    )


class CommissionEvent(Base):
    """One applied change to a commission after it was created (the sub-ledger's history)."""

    __tablename__ = "commission_events"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    commission_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # updated|attached
    report_id: Mapped[int | None] = mapped_column(BigInteger)
    line: Mapped[int | None] = mapped_column(BigInteger)
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    old_status: Mapped[str] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16))
    old_share: Mapped[int] = mapped_column(BigInteger)
    new_share: Mapped[int] = mapped_column(BigInteger)
    old_commission: Mapped[int] = mapped_column(BigInteger)
    new_commission: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = _created()
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        Index("ix_commission_events_commission", "tenant_id", "commission_id"),
    )


class JournalEntry(Base):
    __tablename__ = "journal_entries"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    idempotency_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    memo: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = _created()
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_journal_entries_key"),
    )


class Posting(Base):
    """One leg of a journal entry. Positive is a credit: what the portal owes a member is a
    positive balance of that member's accounts. Append-only."""

    __tablename__ = "postings"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    entry_id: Mapped[int] = mapped_column(BigInteger)
    account: Mapped[str] = mapped_column(String(32))
    member_id: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        Index("ix_postings_entry", "tenant_id", "entry_id"),
        Index("ix_postings_member", "tenant_id", "member_id"),
        # The key to journal_entries is checked per statement by a trigger (migrations 0001, 0005).
    )


class SettlementRun(Base):
    """One payout date of one tenant: planned, approved (four eyes), executed, completed."""

    __tablename__ = "settlement_runs"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    # The tenant's own number for it (settlement/numbering.py): what the API shows.
    number: Mapped[int] = mapped_column(BigInteger)
    payout_date: Mapped[dt.date] = mapped_column(Date)
    cutoff_date: Mapped[dt.date] = mapped_column(Date)  # confirmed on or before this date
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))  # a RunStatus
    plan_hash: Mapped[str | None] = mapped_column(String(64))
    planned_by: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = _created()
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    executed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "number", name="uq_settlement_runs_number"),
        # One live run per tenant and payout date; a cancelled plan does not count.
        Index("uq_settlement_runs_date", "tenant_id", "payout_date", unique=True,
              sqlite_where=text(f"status <> '{RunStatus.CANCELLED}'"),
              postgresql_where=text(f"status <> '{RunStatus.CANCELLED}'")),
    )


class RunItem(Base):
    """One member's payout in a run, frozen at planning."""

    __tablename__ = "run_items"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    run_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units of the tenant currency
    points: Mapped[int | None] = mapped_column(BigInteger)  # amex_mr / bilt
    destination: Mapped[str | None] = mapped_column(String(320))  # email / account number
    batch_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # an ItemStatus
    provider_item_id: Mapped[str | None] = mapped_column(String(64))
    provider_status: Mapped[str | None] = mapped_column(String(32))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "run_id", "member_id", name="uq_run_items_member"),
        Index("ix_run_items_batch", "tenant_id", "batch_id"),
        # Half of each page left free: an item's status changes two or three times while
        # its run executes, and a new version that fits on its page is a HOT update (no
        # index entries to write): 2.4x faster updates for 20% slower planning inserts.
        {"postgresql_with": {"fillfactor": 50}},
    )


class RunSkip(Base):
    """A member with money who is not paid by this run, and why."""

    __tablename__ = "run_skips"
    tenant_id: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "run_id", "member_id"),)


class RunItemLine(Base):
    """What an item pays, frozen at planning (settlement/runs/lines.py): a commission or a
    referral bonus at its amount then, or a correction of one an earlier run paid."""

    __tablename__ = "run_item_lines"
    tenant_id: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int] = mapped_column(BigInteger)
    item_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(24))
    # commission|referral_bonus|commission_correction|bonus_correction
    ref_id: Mapped[int] = mapped_column(BigInteger)  # the commission's or the bonus's id
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    confirmed_on: Mapped[dt.date | None] = mapped_column(Date)
    earlier_run_id: Mapped[int | None] = mapped_column(BigInteger)  # corrections: who paid it
    # Planning reads a tenant's lines whole (one scan), reports by run; the referral views
    # ask whether bonuses were paid (a partial index: bonuses are few).
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "run_id", "item_id", "kind", "ref_id"),
        Index("ix_run_item_lines_bonus", "tenant_id", "ref_id",
              sqlite_where=text("kind = 'referral_bonus'"),
              postgresql_where=text("kind = 'referral_bonus'")),
    )


class RunBatch(Base):
    """Items of one method submitted together (a PayPal batch of at most 15,000, a file)."""

    __tablename__ = "run_batches"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    # The tenant's own number for it (settlement/numbering.py): what the API shows.
    number: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # a BatchStatus
    idempotency_key: Mapped[str] = mapped_column(String(64))  # sender_batch_id, file name
    provider_batch_id: Mapped[str | None] = mapped_column(String(64))
    items: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The batch's items by status ({"planned": 15000} at planning), recounted with every
    # outcome recorded: a run's totals and progress are read from its batches, in time
    # that does not grow with the run. None: planned before these counts existed.
    status_counts: Mapped[dict | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "run_id", "method", "seq", name="uq_run_batches_seq"),
        UniqueConstraint("tenant_id", "number", name="uq_run_batches_number"),
    )


class Referral(Base):
    """One friend who joined through a referrer's link (members.referred_by): at most one per
    friend, ever. Its life and guards are in settlement/referrals/service.py."""

    __tablename__ = "referrals"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    friend_id: Mapped[int] = mapped_column(BigInteger)
    referrer_external_id: Mapped[str] = mapped_column(String(128))  # as referred_by names it
    referrer_id: Mapped[int | None] = mapped_column(BigInteger)  # None: not a member (yet)
    status: Mapped[str] = mapped_column(String(16))  # a ReferralStatus
    reason: Mapped[str | None] = mapped_column(String(40))  # why held or refused
    terms_index: Mapped[int | None] = mapped_column(Integer)  # policy.referrals[i]
    window_end: Mapped[dt.date | None] = mapped_column(Date)  # exclusive
    commission_id: Mapped[int | None] = mapped_column(BigInteger)  # the qualifying purchase
    qualified_on: Mapped[dt.date | None] = mapped_column(Date)  # its event date
    review: Mapped[str | None] = mapped_column(String(16))  # approved|rejected
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _created()
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "friend_id", name="uq_referrals_friend"),
        Index("ix_referrals_referrer", "tenant_id", "referrer_id"),
        Index("ix_referrals_status", "tenant_id", "status"),
    )


class ReferralBonus(Base):
    """One side (referrer or friend) of the bonus pair a qualifying purchase made. A pair
    that was voided stays as history; at most one pair per referral is live (pending or
    earned) at any time, which the partial unique index enforces."""

    __tablename__ = "referral_bonuses"
    tenant_id: Mapped[int] = mapped_column(Integer)
    id: Mapped[int] = _id()
    referral_id: Mapped[int] = mapped_column(BigInteger)
    commission_id: Mapped[int] = mapped_column(BigInteger)
    side: Mapped[str] = mapped_column(String(8))  # referrer|friend
    member_id: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units posted (cash value)
    points: Mapped[int | None] = mapped_column(BigInteger)  # a points bonus: points owed
    points_method: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # a BonusStatus
    reason: Mapped[str | None] = mapped_column(String(40))
    qualified_on: Mapped[dt.date] = mapped_column(Date)  # the purchase's event date
    confirmed_on: Mapped[dt.date | None] = mapped_column(Date)  # in the tenant's timezone
    pending_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    confirmed_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    voided_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = _created()
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "referral_id", "commission_id", "side",
                         name="uq_referral_bonuses_attempt"),
        Index("uq_referral_bonuses_live", "tenant_id", "referral_id", "side", unique=True,
              sqlite_where=text(f"status IN {sql_in(BonusStatus.PENDING, BonusStatus.EARNED)}"),
              postgresql_where=text(
                  f"status IN {sql_in(BonusStatus.PENDING, BonusStatus.EARNED)}")),
        Index("ix_referral_bonuses_member", "tenant_id", "member_id"),
    )


# The friends of a referrer (referrals recorded when the referrer joins after them).
Index("ix_members_referred_by", Member.tenant_id, Member.referred_by,
      sqlite_where=text("referred_by IS NOT NULL"),
      postgresql_where=text("referred_by IS NOT NULL"))
