"""The ledger's rules are kept by the database: append-only postings and entries, and an
entry that does not balance cannot commit."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from settlement.ledger.writer import Leg, LedgerError, open_entry, post_entry


def _entry(engine, tenant, key="k1"):
    with Session(engine) as session:
        entry_id = post_entry(session, tenant.id, key, "test",
                              [Leg("available", None, "USD", 100),
                               Leg("network_receivable", None, "USD", -100)])
        session.commit()
        return entry_id


def test_posting_cannot_be_updated_or_deleted(engine, tenant):
    entry_id = _entry(engine, tenant)
    for statement in ("UPDATE postings SET amount = 1 WHERE tenant_id = :t AND entry_id = :e",
                      "DELETE FROM postings WHERE tenant_id = :t AND entry_id = :e",
                      "DELETE FROM journal_entries WHERE tenant_id = :t AND id = :e"):
        with Session(engine) as session, pytest.raises(DatabaseError, match="append-only"):
            session.execute(text(statement), {"t": tenant.id, "e": entry_id})


def test_same_idempotency_key_posts_once(engine, tenant):
    assert _entry(engine, tenant, "same") is not None
    assert _entry(engine, tenant, "same") is None
    with Session(engine) as session:
        assert session.execute(text("SELECT count(*) FROM journal_entries WHERE tenant_id = :t"),
                               {"t": tenant.id}).scalar_one() == 1


def test_unbalanced_legs_are_refused_in_code(engine, tenant):
    with Session(engine) as session, pytest.raises(LedgerError):
        post_entry(session, tenant.id, "bad", "test", [Leg("available", None, "USD", 100)])


def test_postgres_refuses_an_unbalanced_entry_written_in_raw_sql(make_tenant, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("the triggers are PostgreSQL's")
    tenant = make_tenant()
    with Session(engine) as session, pytest.raises(DatabaseError, match="does not balance"):
        entry_id = open_entry(session, tenant.id, "raw", "test", None)
        session.execute(text("INSERT INTO postings (tenant_id, entry_id, account, member_id, "
                             "currency, amount) VALUES (:t, :e, 'available', NULL, 'USD', 5)"),
                        {"t": tenant.id, "e": entry_id})
        session.commit()


def test_postgres_refuses_an_entry_without_postings(engine, make_tenant):
    if engine.dialect.name != "postgresql":
        pytest.skip("the constraint trigger is PostgreSQL's")
    tenant = make_tenant()
    with Session(engine) as session:
        open_entry(session, tenant.id, "empty", "test", None)
        with pytest.raises(DatabaseError, match="no postings"):
            session.commit()


def test_postgres_refuses_postings_that_unbalance_an_old_entry(engine, make_tenant):
    if engine.dialect.name != "postgresql":
        pytest.skip("the statement trigger is PostgreSQL's")
    tenant = make_tenant()
    entry_id = _entry(engine, tenant)
    with Session(engine) as session, pytest.raises(DatabaseError, match="does not balance"):
        session.execute(text("INSERT INTO postings (tenant_id, entry_id, account, member_id, "
                             "currency, amount) VALUES (:t, :e, 'available', NULL, 'USD', 5)"),
                        {"t": tenant.id, "e": entry_id})
