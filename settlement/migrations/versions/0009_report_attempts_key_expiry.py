"""reports.attempts (the watchdog gives up on a report that keeps killing its job) and
api_keys.expires_at (optional expiry of a key)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:50:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite too): a column with a constant default rewrites nothing.
    op.add_column("reports", sa.Column("attempts", sa.Integer(), nullable=False,
                                       server_default="0"))
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True),
                                        nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("attempts")
