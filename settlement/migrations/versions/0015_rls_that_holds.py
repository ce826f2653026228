"""row-level security that holds: the application logs in as `settle_app`, a role that
owns nothing and can become no one, and no setting it may change widens what it sees

Until now the application logged in as the owner and switched to `settle_app` with
`settle.tenant_id` set to its tenant, or to "*" for every tenant: a request able to run SQL
could set "*" (or another tenant's id), or `RESET ROLE` back to the owner.

From here, the policies compare each row's tenant with `settle_tenant()`, a SECURITY
DEFINER function (it runs as the owner), which trusts a setting only from a session the
owner logged in:
- a session logged in as the owner (workers, the command line) that switched to
  `settle_app` for one tenant: the tenant is `settle.tenant_id` (trusted code chose it);
- any other login (the web's `settle_app`): the tenant of the live API key whose sha256 is
  in `settle.key_hash`. A request knows its own key, hence its own hash; another tenant's
  hash is in rows it cannot read, and a hash cannot be guessed (256 bits of a random key).
  So setting any value gives at most the tenant whose key the request already holds;
  "*" and "" give no tenant at all. A revoked or expired key loses its rows at its next
  statement.
Before a key is known, the web asks narrow SECURITY DEFINER functions: the principal of a
key hash, the batch a PayPal event names, the metrics' counts. Nothing else.

Roles are the cluster's, not the database's: the role is only altered when it differs
from what it must be (several databases of one cluster migrate the same role).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 07:30:00
"""
from alembic import op
import sqlalchemy as sa

from settlement.migrations.helpers import APP_ROLE, CONTEXT, TENANT, tenant_policy_sql

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

ROLE = APP_ROLE
# A refused role setup must fail the upgrade: the web would log in as a role that is not
# what the README promises.
ROLE_SETUP = f"""
DO $$
DECLARE granted record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
    BEGIN
      CREATE ROLE {ROLE} LOGIN NOINHERIT;
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN NULL;  -- another database's upgrade
      WHEN insufficient_privilege THEN RAISE EXCEPTION
        'the migrating role cannot create the login role {ROLE}: grant it CREATEROLE, or '
        'run CREATE ROLE {ROLE} LOGIN NOINHERIT as a superuser and upgrade again';
    END;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}' AND (rolsuper OR rolbypassrls
             OR rolcreaterole OR rolcreatedb OR rolreplication OR rolinherit
             OR NOT rolcanlogin)) THEN
    ALTER ROLE {ROLE} LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB
      NOREPLICATION;
  END IF;
  -- A member of nothing: no SET ROLE to an owner, no inherited grant.
  FOR granted IN SELECT g.rolname FROM pg_auth_members m
      JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
      WHERE u.rolname = '{ROLE}' LOOP
    EXECUTE format('REVOKE %I FROM {ROLE}', granted.rolname);
  END LOOP;
  IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
             WHERE r.rolname = '{ROLE}') THEN
    RAISE EXCEPTION '{ROLE} owns tables: an owner is not bound by row-level security';
  END IF;
  -- The owner switches to the role for one tenant's work (workers, command line).
  IF NOT pg_has_role(current_user, '{ROLE}', 'MEMBER') THEN
    EXECUTE format('GRANT {ROLE} TO %I', current_user);
  END IF;
END $$"""

# Only the owner creates objects in public (PostgreSQL 15's default; older ones let anyone).
SCHEMA = """
DO $$ BEGIN
  REVOKE CREATE ON SCHEMA public FROM PUBLIC;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'cannot revoke CREATE on schema public from PUBLIC: not its owner';
END $$"""

# Every definer function: a fixed search path, the temporary schema last, so the caller
# cannot slip in an object of its own under a name the function uses.
DEFINER = "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp"
LIVE_KEY = "k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())"
FUNCTIONS = {
    "settle_tenant()": f"""
      CREATE FUNCTION settle_tenant() RETURNS integer {DEFINER} AS $$
        SELECT CASE
          -- current_user is the function's owner here; session_user is who logged in.
          WHEN pg_has_role(session_user, current_user, 'MEMBER') THEN
            CAST(NULLIF(NULLIF(current_setting('settle.tenant_id', true), ''), '*') AS integer)
          ELSE (SELECT k.tenant_id FROM api_keys k
                WHERE k.secret_hash = current_setting('settle.key_hash', true) AND {LIVE_KEY})
        END
      $$""",
    "settle_key_principal(text)": f"""
      CREATE FUNCTION settle_key_principal(presented_hash text)
      RETURNS TABLE (tenant_id integer, key_id bigint, role text) {DEFINER} AS $$
        SELECT k.tenant_id, k.id, k.role FROM api_keys k
        WHERE k.secret_hash = presented_hash AND {LIVE_KEY}
      $$""",
    "settle_paypal_item_batch(text,bigint,bigint)": """
      CREATE FUNCTION settle_paypal_item_batch(tenant_slug text, run bigint, item bigint)
      RETURNS TABLE (tenant_id integer, batch_id bigint, method text, status text)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
      AS $$
        SELECT b.tenant_id, b.id, b.method, b.status FROM tenants t
        JOIN run_items i ON i.tenant_id = t.id AND i.run_id = run AND i.id = item
        JOIN run_batches b ON b.tenant_id = i.tenant_id AND b.id = i.batch_id
        WHERE t.slug = tenant_slug
      $$""",
    "settle_live_run_item_counts()": f"""
      CREATE FUNCTION settle_live_run_item_counts()
      RETURNS TABLE (status text, items bigint) {DEFINER} AS $$
        SELECT i.status, count(*) FROM run_items i
        JOIN settlement_runs r ON r.tenant_id = i.tenant_id AND r.id = i.run_id
        WHERE r.status IN ('approved', 'executing') GROUP BY i.status
      $$""",
    "settle_last_ledger_checks()": f"""
      CREATE FUNCTION settle_last_ledger_checks()
      RETURNS TABLE (slug text, detail text) {DEFINER} AS $$
        SELECT t.slug, (SELECT a.detail FROM audit_log a
                        WHERE a.tenant_id = t.id AND a.action = 'ledger.checked'
                        ORDER BY a.id DESC LIMIT 1)
        FROM tenants t ORDER BY t.id
      $$""",
}


def upgrade() -> None:
    # PayPal transmission ids already seen (the webhook refuses a replay); any database.
    op.create_table(
        'webhook_transmissions',
        sa.Column('transmission_id', sa.String(length=128), nullable=False),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('transmission_id'))
    op.create_index('webhook_transmissions_seen_at', 'webhook_transmissions', ['seen_at'])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(ROLE_SETUP)
    op.execute(SCHEMA)
    # The key look-up of every statement, and one tenant per hash.
    op.create_index('api_keys_secret_hash', 'api_keys', ['secret_hash'], unique=True)
    for signature, create in FUNCTIONS.items():
        op.execute(create)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {ROLE}")
    for table, column in _isolated_tables():
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({tenant_policy_sql(column)})")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")
    # Tables of later revisions too (tests/hostile/test_rls.py fails one with a tenant
    # column and no row-level security).
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
               f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
               f"GRANT USAGE, SELECT ON SEQUENCES TO {ROLE}")


def _isolated_tables() -> list[tuple[str, str]]:
    rows = op.get_bind().execute(sa.text(
        "SELECT tablename FROM pg_policies WHERE schemaname = 'public' "
        "AND policyname = 'tenant_isolation' ORDER BY tablename")).scalars()
    return [(table, "id" if table == "tenants" else "tenant_id") for table in rows]


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # The role stays as it is: other databases of the cluster may use it.
        for table, column in _isolated_tables():
            op.execute(f"DROP POLICY tenant_isolation ON {table}")
            op.execute(f"CREATE POLICY tenant_isolation ON {table} "
                       f"USING ({CONTEXT} = '*' OR {column} = {TENANT})")
        for signature in FUNCTIONS:
            op.execute(f"DROP FUNCTION {signature}")
        op.drop_index('api_keys_secret_hash', table_name='api_keys')
        op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
                   f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {ROLE}")
        op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
                   f"REVOKE USAGE, SELECT ON SEQUENCES FROM {ROLE}")
    op.drop_index('webhook_transmissions_seen_at', table_name='webhook_transmissions')
    op.drop_table('webhook_transmissions')
