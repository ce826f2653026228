"""run_batches: the batch's points and its items by status, for constant-time run status

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 05:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('run_batches', sa.Column('points', sa.BigInteger(), nullable=False,
                                           server_default='0'))
    op.add_column('run_batches', sa.Column('status_counts', sa.JSON(), nullable=True))
    # Batches planned before: their points from their items; status_counts stays NULL,
    # which tells run_totals to count those runs' items instead.
    op.execute("""
      UPDATE run_batches SET points = COALESCE((
        SELECT sum(i.points) FROM run_items i
        WHERE i.tenant_id = run_batches.tenant_id AND i.batch_id = run_batches.id), 0)""")


def downgrade() -> None:
    op.drop_column('run_batches', 'status_counts')
    op.drop_column('run_batches', 'points')
