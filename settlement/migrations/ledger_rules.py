"""The ledger's rules, kept by the database itself.

PostgreSQL:
- journal entries and postings are append-only (no UPDATE, DELETE or TRUNCATE);
- a deferred constraint trigger on journal_entries checks, at commit, that each new entry
  has postings and that they sum to zero per currency;
- a statement trigger on postings checks that what each statement adds balances per entry
  and currency, so postings added later to an old entry cannot unbalance it, and that
  those entries exist (a foreign key checked per statement: a per-row key costs a trigger
  call per posting).
SQLite: the append-only rule as triggers; the zero-sum rule is checked in code
(settlement.ledger.service.check_balanced) before every commit that posts.
"""
from __future__ import annotations

APPEND_ONLY_TABLES = ("journal_entries", "postings", "commission_events", "audit_log")

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


def _pg_statements() -> list[str]:
    statements = [PG_FUNCTIONS]
    for table in APPEND_ONLY_TABLES:
        statements.append(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION settle_refuse_change()")
        statements.append(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION settle_refuse_change()")
    statements.append(
        "CREATE CONSTRAINT TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION settle_entry_balanced()")
    statements.append(
        "CREATE TRIGGER postings_balanced AFTER INSERT ON postings "
        "REFERENCING NEW TABLE AS new_postings "
        "FOR EACH STATEMENT EXECUTE FUNCTION settle_postings_balanced()")
    # The uploaded bytes are stored as received: no compression pass on the hot path.
    statements.append("ALTER TABLE report_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
    return statements


def _sqlite_statements() -> list[str]:
    statements = []
    for table in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only: {op} refused'); END")
    return statements


def install_ledger_rules(bind) -> None:
    if bind.dialect.name == "postgresql":
        # psycopg reads % as a placeholder even with no parameters: double it.
        statements = [s.replace("%", "%%") for s in _pg_statements()]
    else:
        statements = _sqlite_statements()
    for statement in statements:
        bind.exec_driver_sql(statement)


def replace_ledger_functions(bind) -> None:
    """Install the current bodies of the rule functions (CREATE OR REPLACE) in a database
    whose triggers already exist."""
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(PG_FUNCTIONS.replace("%", "%%"))
