"""The schema stays distributable by tenant (DESIGN.md "Scale", docs/SCALING.md): on Citus a
table distributed by `tenant_id` may only carry a primary key or unique constraint that
includes `tenant_id`, and a foreign key between two distributed tables must include it on
both sides (co-location). This reads the live PostgreSQL catalog after every migration, so a
new table or key that breaks the rule fails here, not on the day the portal scales out.

Reference tables (small, replicated to every node) are exempt: `tenants` itself,
`api_keys`, which a request looks up by its hash before it knows the tenant, and
`webhook_transmissions`, PayPal's transmission ids (no tenant's data). A distributed
table may point at a reference table; a reference table may not point at a distributed one.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from settlement.db import engine_for

pytestmark = [pytest.mark.postgres]

# Tables that are not distributed by tenant: replicated reference tables, and Alembic's own.
REFERENCE_TABLES = {"tenants", "api_keys", "webhook_transmissions", "alembic_version"}


def _catalog(pg_url: str):
    with engine_for(pg_url).connect() as conn:
        tables = {name: set(cols) for name, cols in conn.execute(text("""
            SELECT c.relname, array_agg(a.attname::text)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
            GROUP BY c.relname"""))}
        constraints = conn.execute(text("""
            SELECT con.conname, con.contype, src.relname,
                   ARRAY(SELECT a.attname::text FROM unnest(con.conkey) k
                         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k),
                   dst.relname,
                   ARRAY(SELECT a.attname::text FROM unnest(con.confkey) k
                         JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k)
            FROM pg_constraint con
            JOIN pg_class src ON src.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = src.relnamespace
            LEFT JOIN pg_class dst ON dst.oid = con.confrelid
            WHERE n.nspname = 'public' AND con.contype IN ('p', 'u', 'f')""")).all()
        unique_indexes = conn.execute(text("""
            SELECT i.relname, t.relname,
                   ARRAY(SELECT a.attname::text FROM unnest(x.indkey) k
                         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'public' AND x.indisunique""")).all()
    return tables, constraints, unique_indexes


def test_every_tenant_table_has_a_tenant_id_column(pg_url):
    tables, _, _ = _catalog(pg_url)
    missing = sorted(t for t, cols in tables.items()
                     if t not in REFERENCE_TABLES and "tenant_id" not in cols)
    assert missing == [], f"tables without tenant_id (distribute them or list them as " \
                          f"reference tables): {missing}"


def test_every_primary_and_unique_key_of_a_tenant_table_includes_tenant_id(pg_url):
    _, constraints, unique_indexes = _catalog(pg_url)
    bad = sorted({f"{table}.{name} ({', '.join(cols)})"
                  for name, kind, table, cols, _, _ in constraints
                  if kind in ("p", "u") and table not in REFERENCE_TABLES
                  and "tenant_id" not in cols}
                 | {f"{table}.{name} ({', '.join(cols)})"
                    for name, table, cols in unique_indexes
                    if table not in REFERENCE_TABLES and "tenant_id" not in cols})
    assert bad == [], f"keys Citus cannot enforce on a table distributed by tenant: {bad}"


def test_every_foreign_key_between_tenant_tables_joins_on_tenant_id(pg_url):
    _, constraints, _ = _catalog(pg_url)
    bad = []
    for name, kind, table, cols, target, target_cols in constraints:
        if kind != "f" or target in REFERENCE_TABLES:
            continue  # anything may point at a reference table
        if table in REFERENCE_TABLES:
            bad.append(f"{table}.{name} -> {target}: a reference table pointing at a "
                       f"distributed one")
            continue
        pairs = dict(zip(cols, target_cols))
        if pairs.get("tenant_id") != "tenant_id":
            bad.append(f"{table}.{name} -> {target} ({', '.join(cols)})")
    assert bad == [], f"foreign keys that are not co-located by tenant: {sorted(bad)}"
