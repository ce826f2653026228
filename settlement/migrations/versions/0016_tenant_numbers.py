"""tenant numbers: each tenant's reports, runs, batches, keys and share rules are numbered
1, 2, 3... of their own (settlement/numbering.py), with counters per tenant and kind; each
member's exchanges are numbered 1, 2, 3... of the member's own

Internal ids come from sequences every tenant shares, so an id shown to one tenant told it
how many objects the others made. Existing rows are numbered per tenant (exchanges: per
member) in id order, the order they were made in, and each counter starts after the
highest number given.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 07:40:00
"""
from alembic import op
import sqlalchemy as sa

from settlement.migrations.helpers import enable_tenant_isolation


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

# kind -> table; the same as settlement.numbering.KINDS, frozen here as of this revision.
KINDS = {
    "report": "reports",
    "run": "settlement_runs",
    "batch": "run_batches",
    "key": "api_keys",
    "share_rule": "share_rules",
}
# SQLite cannot make an added column NOT NULL without copying the table: there the
# services alone fill it (and the unique index still refuses a number given twice).
# A report is numbered once its upload is stored whole: a row still being received has none.
NULLABLE = {"reports"}


def upgrade() -> None:
    op.create_table(
        'tenant_counters',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('last', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'kind'),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for kind, table in KINDS.items():
        # Not in batch mode: SQLite would copy each table and could lose its partial
        # indexes; an added nullable column and a unique index need no copy.
        op.add_column(table, sa.Column('number', sa.BigInteger(), nullable=True))
        _backfill(table)
        if sqlite:
            op.create_index(f'uq_{table}_number', table, ['tenant_id', 'number'], unique=True)
        else:
            if table not in NULLABLE:
                op.alter_column(table, 'number', existing_type=sa.BigInteger(),
                                nullable=False)
            op.create_unique_constraint(f'uq_{table}_number', table, ['tenant_id', 'number'])
        op.execute(sa.text(
            f"INSERT INTO tenant_counters (tenant_id, kind, last) "
            f"SELECT tenant_id, :kind, max(number) FROM {table} "
            f"WHERE number IS NOT NULL GROUP BY tenant_id").bindparams(kind=kind))
    # Exchanges: per member (their paths name the member), no counter: the service takes
    # the member's next number under the member's lock.
    op.add_column('exchanges', sa.Column('number', sa.BigInteger(), nullable=True))
    _backfill('exchanges', 'tenant_id, member_id')
    if sqlite:
        op.create_index('uq_exchanges_number', 'exchanges', ['tenant_id', 'member_id', 'number'],
                        unique=True)
    else:
        op.alter_column('exchanges', 'number', existing_type=sa.BigInteger(), nullable=False)
        op.create_unique_constraint('uq_exchanges_number', 'exchanges',
                                    ['tenant_id', 'member_id', 'number'])
    enable_tenant_isolation(op, ('tenant_counters',))


def _backfill(table: str, per: str = "tenant_id") -> None:
    """Number the rows of each tenant (or `per` group) 1, 2, 3... in id order (both
    databases have window functions and UPDATE ... FROM)."""
    op.execute(f"""
      UPDATE {table} SET number = n.number
      FROM (SELECT tenant_id, id,
                   row_number() OVER (PARTITION BY {per} ORDER BY id) AS number
            FROM {table}) n
      WHERE {table}.tenant_id = n.tenant_id AND {table}.id = n.id""")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in (*KINDS.values(), 'exchanges'):
        if sqlite:
            op.drop_index(f'uq_{table}_number', table_name=table)
            op.execute(f"ALTER TABLE {table} DROP COLUMN number")  # SQLite 3.35+
        else:
            op.drop_constraint(f'uq_{table}_number', table, type_='unique')
            op.drop_column(table, 'number')
    op.drop_table('tenant_counters')
