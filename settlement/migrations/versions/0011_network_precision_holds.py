"""Network reports as the networks send them: sale and commission at the network's
precision, holding periods, network accounts, corrections awaiting their original

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 05:05:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# Network units (ten-thousandths of the major unit) per minor unit of the currencies a
# tenant could use before this revision (every other had no minor-digit entry).
_SCALE_BEFORE = "CASE WHEN currency IN ('JPY', 'KRW') THEN 10000 ELSE 100 END"


def upgrade() -> None:
    # Up to 4 decimals as the network stated them; the minor-unit columns stay the rounded
    # amounts the ledger carries. Rows before this revision were whole minor units.
    op.add_column("commissions", sa.Column("sale_precise", sa.BigInteger(), nullable=True))
    op.add_column("commissions", sa.Column("commission_precise", sa.BigInteger(),
                                           nullable=True))
    op.execute(f"UPDATE commissions SET sale_precise = sale_amount * {_SCALE_BEFORE}, "
               f"commission_precise = commission_amount * {_SCALE_BEFORE}")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("commissions", "sale_precise", nullable=False)
        op.alter_column("commissions", "commission_precise", nullable=False)
        # A network account id is up to 64 characters, qualified by its network.
        for table in ("commissions", "reports"):
            op.alter_column(table, "source", type_=sa.String(80))
    # A line without a status confirms on this date (its holding period) unless reversed.
    op.add_column("commissions", sa.Column("confirm_after", sa.Date(), nullable=True))
    # A correction whose original was never seen: kept, carrying no money, until it arrives.
    op.add_column("commissions", sa.Column("awaiting_original", sa.Boolean(), nullable=False,
                                           server_default=sa.false()))
    op.add_column("retailers", sa.Column("confirm_after_days", sa.Integer(), nullable=True))
    op.add_column("reports", sa.Column("unmatched", sa.Integer(), nullable=False,
                                       server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("unmatched")
    with op.batch_alter_table("retailers") as batch:
        batch.drop_column("confirm_after_days")
    with op.batch_alter_table("commissions") as batch:
        for column in ("awaiting_original", "confirm_after", "commission_precise",
                       "sale_precise"):
            batch.drop_column(column)
