"""run_item_lines: what each run item paid, frozen at planning

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:00:00
"""
from alembic import op
import sqlalchemy as sa

from settlement.migrations.helpers import enable_tenant_isolation


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'run_item_lines',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.BigInteger(), nullable=False),
        sa.Column('item_id', sa.BigInteger(), nullable=False),
        sa.Column('member_id', sa.BigInteger(), nullable=False),
        # commission | referral_bonus | commission_correction | bonus_correction
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('ref_id', sa.BigInteger(), nullable=False),  # commission or bonus id
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('confirmed_on', sa.Date(), nullable=True),
        sa.Column('earlier_run_id', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('tenant_id', 'run_id', 'item_id', 'kind', 'ref_id'))
    # Is a bonus paid? (the referral views ask, a page of bonuses at a time). Bonuses are
    # few beside commissions: only their rows carry this index.
    op.create_index('ix_run_item_lines_bonus', 'run_item_lines', ['tenant_id', 'ref_id'],
                    sqlite_where=sa.text("kind = 'referral_bonus'"),
                    postgresql_where=sa.text("kind = 'referral_bonus'"))
    # Runs planned before: their commission rows as the report read them then (confirmed
    # in the span since the member's previous paid cut-off), frozen from today's state.
    op.execute("""
      INSERT INTO run_item_lines (tenant_id, run_id, item_id, member_id, kind, ref_id, amount,
                                  status, confirmed_on)
      SELECT i.tenant_id, i.run_id, i.id, i.member_id, 'commission', c.id, c.share_amount,
             c.status, c.confirmed_on
      FROM run_items i
      JOIN settlement_runs r ON r.tenant_id = i.tenant_id AND r.id = i.run_id
      JOIN commissions c ON c.tenant_id = i.tenant_id AND c.member_id = i.member_id
       AND c.status = 'confirmed' AND c.confirmed_on <= r.cutoff_date
       AND c.confirmed_on > COALESCE((
           SELECT max(r2.cutoff_date) FROM run_items i2
           JOIN settlement_runs r2 ON r2.tenant_id = i2.tenant_id AND r2.id = i2.run_id
           WHERE i2.tenant_id = i.tenant_id AND i2.member_id = i.member_id
             AND i2.status = 'succeeded' AND r2.payout_date < r.payout_date), '1900-01-01')
      WHERE r.status <> 'cancelled'""")
    enable_tenant_isolation(op, ('run_item_lines',))


def downgrade() -> None:
    op.drop_index('ix_run_item_lines_bonus', table_name='run_item_lines')
    op.drop_table('run_item_lines')
