"""Shared pieces of the migrations: tenant-led keys and row-level security."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op as alembic_op

CONTEXT = "current_setting('settle.tenant_id', true)"
# Sargable: compares the integer column, so the policy can use the tenant-led indexes.
TENANT = f"CAST(NULLIF(NULLIF({CONTEXT}, ''), '*') AS integer)"
APP_ROLE = "settle_app"


def _sqlite() -> bool:
    return alembic_op.get_bind().dialect.name == "sqlite"


def id_column() -> sa.Column:
    # SQLite generates ids only for a lone INTEGER PRIMARY KEY; PostgreSQL keys on
    # (tenant_id, id) so that every key leads with the tenant.
    if _sqlite():
        return sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True)
    return sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False)


def tenant_key() -> tuple:
    if _sqlite():
        return (sa.UniqueConstraint("tenant_id", "id"),)
    return (sa.PrimaryKeyConstraint("tenant_id", "id"),)


def enable_tenant_isolation(op, tables) -> None:
    """Row-level security on new tenant tables, and the application role's grants."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} "
                   f"USING ({CONTEXT} = '*' OR tenant_id = {TENANT})")
    op.execute(f"""
      DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
          EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}';
          EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}';
        END IF;
      END $$""")
