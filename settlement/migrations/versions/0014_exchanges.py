"""exchanges: members' point exchanges, their fulfilment batches, campaign budgets

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 05:20:00
"""
from alembic import op
import sqlalchemy as sa

from settlement.migrations.helpers import enable_tenant_isolation, id_column, tenant_key


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'exchanges',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        id_column(),
        sa.Column('member_id', sa.BigInteger(), nullable=False),
        sa.Column('exit', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('partner', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.Column('bonus_value', sa.BigInteger(), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.Column('fee_points', sa.BigInteger(), nullable=False),
        sa.Column('debit', sa.BigInteger(), nullable=False),
        sa.Column('campaign', sa.String(length=63), nullable=True),
        sa.Column('destination', sa.Text(), nullable=True),
        sa.Column('idempotency_key', sa.String(length=200), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('requested_on', sa.Date(), nullable=False),
        sa.Column('credit_on', sa.Date(), nullable=False),
        sa.Column('batch_id', sa.BigInteger(), nullable=True),
        sa.Column('provider_ref', sa.String(length=64), nullable=True),
        sa.Column('provider_status', sa.String(length=32), nullable=True),
        sa.Column('provider_item_id', sa.String(length=64), nullable=True),
        sa.Column('code_cipher', sa.LargeBinary(), nullable=True),
        sa.Column('failure_reason', sa.String(length=200), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        *tenant_key(),
        sa.UniqueConstraint('tenant_id', 'member_id', 'idempotency_key', name='uq_exchanges_key'),
    )
    with op.batch_alter_table('exchanges', schema=None) as batch_op:
        batch_op.create_index('ix_exchanges_member', ['tenant_id', 'member_id', 'requested_on'])
        batch_op.create_index('ix_exchanges_open', ['tenant_id', 'exit', 'status'],
                              sqlite_where=sa.text("status IN ('requested', 'processing')"),
                              postgresql_where=sa.text("status IN ('requested', 'processing')"))
        batch_op.create_index('ix_exchanges_batch', ['tenant_id', 'batch_id'])
    op.create_table(
        'exchange_batches',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        id_column(),
        sa.Column('exit', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('credit_on', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('idempotency_key', sa.String(length=64), nullable=False),
        sa.Column('provider_batch_id', sa.String(length=128), nullable=True),
        sa.Column('items', sa.Integer(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
        *tenant_key(),
        sa.UniqueConstraint('tenant_id', 'idempotency_key', name='uq_exchange_batches_key'),
    )
    op.create_table(
        'campaign_usage',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('campaign', sa.String(length=63), nullable=False),
        sa.Column('used_value', sa.BigInteger(), nullable=False, server_default='0'),
        sa.Column('used_count', sa.BigInteger(), nullable=False, server_default='0'),
        sa.PrimaryKeyConstraint('tenant_id', 'campaign'),
    )
    enable_tenant_isolation(op, ('exchanges', 'exchange_batches', 'campaign_usage'))


def downgrade() -> None:
    op.drop_table('campaign_usage')
    op.drop_table('exchange_batches')
    with op.batch_alter_table('exchanges', schema=None) as batch_op:
        batch_op.drop_index('ix_exchanges_batch')
        batch_op.drop_index('ix_exchanges_open')
        batch_op.drop_index('ix_exchanges_member')
    op.drop_table('exchanges')
