"""Row-level security: each tenant sees only its own rows (PostgreSQL).

The application works as the role `settle_app` (settlement/db.py switches to it in every
transaction when it exists) with `settle.tenant_id` set to the caller's tenant, or to "*"
for the system context. The table owner (who migrates) is not bound by the policies.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

from settlement.migrations.helpers import APP_ROLE, CONTEXT, TENANT

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT_TABLES = ("api_keys", "audit_log", "retailers", "retailer_network_ids", "members",
                 "share_rules", "reports", "report_chunks", "report_errors", "commissions",
                 "commission_events", "journal_entries", "postings")
ROLE = APP_ROLE


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite is single-tenant-per-process embedded; scoping is in the queries
    op.execute(f"""
      DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
          CREATE ROLE {ROLE} NOLOGIN;
        END IF;
      EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot create role {ROLE}: row-level security binds only non-owners';
      END $$""")
    op.execute(f"""
      DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
          EXECUTE 'GRANT {ROLE} TO ' || quote_ident(current_user);
          EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}';
          EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE}';
        END IF;
      END $$""")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"""CREATE POLICY tenant_isolation ON {table}
          USING ({CONTEXT} = '*' OR tenant_id = {TENANT})""")
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute(f"""CREATE POLICY tenant_isolation ON tenants
      USING ({CONTEXT} = '*' OR id = {TENANT})""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in (*TENANT_TABLES, "tenants"):
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
