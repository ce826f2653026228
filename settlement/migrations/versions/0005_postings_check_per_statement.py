"""postings trigger: check what each statement adds, not the entries' whole history

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 04:30:00
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The statement trigger summed each touched entry's postings from the table; on a table
    # grown in the same transaction its plan could loop over every posting per entry (85 s
    # for the referral entries of a million-line report). The rule it keeps is the same.
    if op.get_bind().dialect.name == "postgresql":
        # psycopg reads % as a placeholder even with no parameters: double it.
        op.get_bind().exec_driver_sql(PG_FUNCTIONS.replace("%", "%%"))


def downgrade() -> None:
    pass  # the new body enforces the same rule; nothing to undo


# The rule functions as this revision installs them (CREATE OR REPLACE, in a database whose
# triggers 0001 made): the statement trigger on postings checks that what each statement
# adds balances per entry and currency, so postings added later to an old entry cannot
# unbalance it, and that those entries exist.
PG_FUNCTIONS = """
CREATE OR REPLACE FUNCTION settle_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE OR REPLACE FUNCTION settle_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM postings p
                 WHERE p.tenant_id = NEW.tenant_id AND p.entry_id = NEW.id) THEN
    RAISE EXCEPTION 'journal entry % (%) has no postings', NEW.id, NEW.idempotency_key
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  SELECT p.currency, sum(p.amount) AS total INTO bad FROM postings p
   WHERE p.tenant_id = NEW.tenant_id AND p.entry_id = NEW.id
   GROUP BY p.currency HAVING sum(p.amount) <> 0 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'journal entry % (%) does not balance: % %', NEW.id,
      NEW.idempotency_key, bad.total, bad.currency
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION settle_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  named record;
  bad record;
BEGIN
  -- The foreign key to journal_entries, checked once per entry a statement names instead of
  -- once per row: one primary-key probe each, whatever the statistics say.
  FOR named IN SELECT DISTINCT tenant_id, entry_id FROM new_postings LOOP
    PERFORM 1 FROM journal_entries e WHERE e.tenant_id = named.tenant_id
                                       AND e.id = named.entry_id;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'postings name journal entry % which does not exist', named.entry_id
        USING ERRCODE = 'foreign_key_violation';
    END IF;
  END LOOP;
  -- Every statement's postings must balance per entry and currency. Postings are
  -- append-only and every entry starts at zero, so this keeps every entry's total at zero
  -- without reading the entries' earlier postings (a read whose plan, on a table that grew
  -- in this very transaction, the planner can get badly wrong).
  SELECT n.entry_id, n.currency, sum(n.amount) AS total INTO bad FROM new_postings n
   GROUP BY n.tenant_id, n.entry_id, n.currency HAVING sum(n.amount) <> 0 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'journal entry % does not balance after this insert: % %',
      bad.entry_id, bad.total, bad.currency
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$;
"""
