"""commissions: a partial index on the pending lines with a holding date

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # confirm_held runs with every report and daily: it must find the few held lines
    # without reading every commission of the tenant.
    op.create_index("ix_commissions_held", "commissions", ["tenant_id", "confirm_after"],
                    postgresql_where=sa.text("status = 'pending' AND confirm_after IS NOT NULL"),
                    sqlite_where=sa.text("status = 'pending' AND confirm_after IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_commissions_held", table_name="commissions")
