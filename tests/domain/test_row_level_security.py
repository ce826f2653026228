"""PostgreSQL row-level security is the backstop behind the tenant scoping of every query:
a session scoped to one tenant neither sees nor writes another tenant's rows, even with a
query that forgets its tenant filter."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from settlement.db import SYSTEM, tenant_session
from tests.domain.helpers import add_members


@pytest.fixture
def pg_engine(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    return engine


def test_a_tenant_session_sees_no_row_of_another_tenant(pg_engine, make_tenant):
    mine, theirs = make_tenant(), make_tenant()
    add_members(pg_engine, mine, "a1")
    add_members(pg_engine, theirs, "b1", "b2")
    with tenant_session(pg_engine, mine.id) as session:
        unfiltered = session.execute(text("SELECT tenant_id, external_id FROM members")).all()
        tenants = session.execute(text("SELECT id FROM tenants")).scalars().all()
    assert unfiltered == [(mine.id, "a1")]
    assert tenants == [mine.id]


def test_a_tenant_session_cannot_write_into_another_tenant(pg_engine, make_tenant):
    mine, theirs = make_tenant(), make_tenant()
    with tenant_session(pg_engine, mine.id) as session, pytest.raises(
            DatabaseError, match="row-level security"):
        session.execute(text("INSERT INTO members (tenant_id, external_id) VALUES (:t, 'x')"),
                        {"t": theirs.id})
        session.flush()


def test_the_system_context_sees_every_tenant(pg_engine, make_tenant):
    first, second = make_tenant(), make_tenant()
    with tenant_session(pg_engine, SYSTEM) as session:
        found = set(session.execute(text("SELECT id FROM tenants WHERE id IN (:a, :b)"),
                                    {"a": first.id, "b": second.id}).scalars())
    assert found == {first.id, second.id}
