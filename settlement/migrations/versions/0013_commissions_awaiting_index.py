"""commissions: a partial index on the corrections awaiting their original

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 05:45:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every report looks for the waiting corrections its lines may release: the few of
    # them, without reading every commission of the tenant.
    op.create_index("ix_commissions_awaiting", "commissions",
                    ["tenant_id", "source", "original_transaction_id"],
                    postgresql_where=sa.text("awaiting_original"),
                    sqlite_where=sa.text("awaiting_original"))


def downgrade() -> None:
    op.drop_index("ix_commissions_awaiting", table_name="commissions")
