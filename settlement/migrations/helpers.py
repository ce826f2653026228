"""Shared pieces of the migrations: tenant-led keys and row-level security."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op as alembic_op

CONTEXT = "current_setting('settle.tenant_id', true)"
# Sargable: compares the integer column, so the policy can use the tenant-led indexes.
TENANT = f"CAST(NULLIF(NULLIF({CONTEXT}, ''), '*') AS integer)"
APP_ROLE = "settle_app"
# From revision 0015 on: the tenant of the session as settle_tenant() establishes it, which
# no setting the application role may change can widen (see that revision). Evaluated
# once per statement (a sub-select), and still an index condition on the tenant column.
TENANT_FUNCTION = "settle_tenant"


def tenant_policy_sql(column: str = "tenant_id") -> str:
    return f"{column} = (SELECT {TENANT_FUNCTION}())"


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
    # Revisions before 0015 made the policy of their time (0015 replaces them all).
    after_0015 = op.get_bind().execute(sa.text(
        f"SELECT to_regprocedure('{TENANT_FUNCTION}()') IS NOT NULL")).scalar()
    policy = tenant_policy_sql() if after_0015 else f"{CONTEXT} = '*' OR tenant_id = {TENANT}"
    for table in tables:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({policy})")
    op.execute(f"""
      DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
          EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}';
          EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}';
        END IF;
      END $$""")
