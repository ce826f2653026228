"""Row-level security that holds (revision 0015), PostgreSQL.

The attacker is a compromised request: a connection of the web's role (`settle_app`,
Settings.app_url()) bound to tenant A by A's key, free to run any SQL it likes. It must
not read or change a row of tenant B, whatever it sets (`settle.tenant_id`,
`settle.key_hash`, the role) and whatever it calls. What it can do is what A's key
allows: these tests also show that it sees A's rows, so that an empty answer means
"refused", not "broken".
"""
from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from settlement.access.service import create_key, key_digest
from settlement.config import Settings
from settlement.db import bind_key, engine_for, tenant_session
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import apply_policy
from tests.conftest import policy_document


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def tenants(pg_url):
    """Tenants A and B, each with an admin key and a member."""
    made = {}
    with Session(engine_for(pg_url)) as session:
        for name in ("a", "b"):
            slug = f"rls-{name}-{uuid.uuid4().hex[:8]}"
            tenant, _ = apply_policy(session, TenantPolicy.model_validate(policy_document(slug)))
            key = create_key(session, tenant.id, "admin")
            session.execute(text("INSERT INTO members (tenant_id, external_id) "
                                 "VALUES (:t, :e)"), {"t": tenant.id, "e": f"{name}-member"})
            made[name] = {"id": tenant.id, "key": key, "hash": key_digest(key)}
        session.commit()
    return made


@pytest.fixture
def attacker(pg_url, tenants):
    """A psycopg connection as the web's role, bound to A for the whole session (not only
    a transaction, as a compromised request could), autocommit so one refused statement
    does not end the others."""
    conn = psycopg.connect(_dsn(Settings(database_url=pg_url).app_url()), autocommit=True)
    conn.execute("SELECT set_config('settle.key_hash', %s, false)", (tenants["a"]["hash"],))
    yield conn
    conn.close()


def _members_of(conn, tenant_id: int) -> int:
    return conn.execute("SELECT count(*) FROM members WHERE tenant_id = %s",
                        (tenant_id,)).fetchone()[0]


def _renamed(conn, tenant_id: int) -> int:
    return conn.execute("UPDATE members SET name = 'owned' WHERE tenant_id = %s",
                        (tenant_id,)).rowcount


def test_the_web_logs_in_as_a_role_that_is_no_superuser_bypasses_nothing_and_owns_nothing(
        attacker):
    role = attacker.execute(
        "SELECT current_user, session_user, rolsuper, rolbypassrls, rolcreaterole, "
        "rolcreatedb, rolinherit FROM pg_roles WHERE rolname = current_user").fetchone()
    assert role == ("settle_app", "settle_app", False, False, False, False, False)
    assert attacker.execute("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r "
                            "ON r.oid = m.member WHERE r.rolname = 'settle_app'"
                            ).fetchone()[0] == 0  # a member of no role: no SET ROLE
    assert attacker.execute("SELECT count(*) FROM pg_class WHERE relowner = "
                            "(SELECT oid FROM pg_roles WHERE rolname = 'settle_app')"
                            ).fetchone()[0] == 0


def test_every_table_with_a_tenant_column_has_row_level_security_on(attacker):
    unguarded = attacker.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relrowsecurity
          AND (c.relname = 'tenants' OR EXISTS (SELECT 1 FROM pg_attribute a
               WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'))""").fetchall()
    assert unguarded == []


def test_a_request_bound_by_its_key_sees_its_own_tenants_rows(attacker, tenants):
    assert _members_of(attacker, tenants["a"]["id"]) == 1
    assert attacker.execute("SELECT settle_tenant()").fetchone()[0] == tenants["a"]["id"]


@pytest.mark.parametrize("value", ["*", "", " {b} ", "{b}", "{b}.0", "-1", "0", "{a},{b}",
                                   "{b}' OR true --"])
def test_no_settle_tenant_id_value_opens_another_tenants_rows(attacker, tenants, value):
    setting = value.format(a=tenants["a"]["id"], b=tenants["b"]["id"])
    attacker.execute("SELECT set_config('settle.tenant_id', %s, false)", (setting,))
    assert _members_of(attacker, tenants["b"]["id"]) == 0
    assert _renamed(attacker, tenants["b"]["id"]) == 0
    assert attacker.execute("SELECT count(*) FROM tenants").fetchone()[0] == 1


@pytest.mark.parametrize("value", ["*", "", "{b}", "{b_prefix}", "{a_upper}"])
def test_no_settle_key_hash_it_can_make_up_opens_another_tenants_rows(attacker, tenants,
                                                                      value):
    """What it can put there: anything but B's hash, which lives in rows it cannot read
    (256 bits of a random key: not guessable). A's hash in capitals or cut short is not A's."""
    setting = value.format(b=tenants["b"]["id"], b_prefix=tenants["b"]["key"][:12],
                           a_upper=tenants["a"]["hash"].upper())
    attacker.execute("SELECT set_config('settle.key_hash', %s, false)", (setting,))
    assert _members_of(attacker, tenants["b"]["id"]) == 0
    assert _members_of(attacker, tenants["a"]["id"]) == 0
    assert _renamed(attacker, tenants["b"]["id"]) == 0


def test_reset_role_leaves_it_the_same_bound_role(attacker, tenants):
    attacker.execute("RESET ROLE")
    attacker.execute("SET ROLE NONE")
    assert attacker.execute("SELECT current_user").fetchone()[0] == "settle_app"
    assert _members_of(attacker, tenants["b"]["id"]) == 0
    assert _renamed(attacker, tenants["b"]["id"]) == 0


@pytest.mark.parametrize("statement", [
    "SET ROLE postgres", "SELECT set_config('role', 'postgres', false)",
    "SET SESSION AUTHORIZATION postgres", "SET row_security = off",
    "ALTER TABLE members DISABLE ROW LEVEL SECURITY", "DROP POLICY tenant_isolation ON members",
    "ALTER ROLE settle_app BYPASSRLS", "GRANT postgres TO settle_app",
])
def test_it_cannot_become_the_owner_or_switch_the_policies_off(attacker, tenants, statement):
    try:
        attacker.execute(statement)
    except psycopg.errors.Error:
        pass  # refused: what follows shows nothing changed either way
    # row_security = off is accepted but makes a query that a policy would filter fail.
    try:
        seen = _members_of(attacker, tenants["b"]["id"])
    except psycopg.errors.InsufficientPrivilege:
        seen = 0
    attacker.execute("RESET row_security")
    assert seen == 0
    assert _renamed(attacker, tenants["b"]["id"]) == 0
    assert attacker.execute("SELECT current_user").fetchone()[0] == "settle_app"


def test_it_cannot_write_a_row_into_another_tenant_nor_move_its_key_there(attacker, tenants):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the policy's WITH CHECK
        attacker.execute("INSERT INTO members (tenant_id, external_id) VALUES (%s, 'x')",
                         (tenants["b"]["id"],))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        attacker.execute("UPDATE api_keys SET tenant_id = %s", (tenants["b"]["id"],))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        attacker.execute("INSERT INTO api_keys (tenant_id, prefix, secret_hash, role) "
                         "VALUES (%s, 'x', 'known', 'admin')", (tenants["b"]["id"],))


def test_the_definer_functions_answer_only_what_they_are_for(attacker, tenants):
    keys = attacker.execute("SELECT tenant_id, secret_hash FROM api_keys").fetchall()
    assert {tenant for tenant, _ in keys} == {tenants["a"]["id"]}  # B's hashes: not readable
    for guess in ("", "*", "%", tenants["b"]["key"]):  # the key itself is not its hash
        assert attacker.execute("SELECT * FROM settle_key_principal(%s)",
                                (guess,)).fetchall() == []
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        attacker.execute("SELECT * FROM pg_authid")


def test_other_sessions_key_hashes_do_not_show_in_pg_stat_activity(attacker, pg_url,
                                                                   tenants):
    """The web's other sessions are the same role, whose statements pg_stat_activity shows
    it: the hash goes in as a bound parameter, never into a statement's text."""
    web = engine_for(Settings(database_url=pg_url).app_url())
    with tenant_session(web) as session:
        bind_key(session, tenants["b"]["hash"])
        assert session.execute(text("SELECT count(*) FROM members")).scalar() == 1  # B's
        shown = " ".join(row[0] or "" for row in attacker.execute(
            "SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid()").fetchall())
    assert tenants["b"]["hash"] not in shown


def test_a_revoked_key_loses_its_rows_at_the_next_statement(pg_url, tenants):
    with Session(engine_for(pg_url)) as owner:
        key = create_key(owner, tenants["a"]["id"], "operator")
        owner.commit()
    conn = psycopg.connect(_dsn(Settings(database_url=pg_url).app_url()), autocommit=True)
    try:
        conn.execute("SELECT set_config('settle.key_hash', %s, false)", (key_digest(key),))
        assert _members_of(conn, tenants["a"]["id"]) == 1
        with Session(engine_for(pg_url)) as owner:  # what revoke_key writes
            owner.execute(text("UPDATE api_keys SET revoked_at = now() WHERE secret_hash = :h"),
                          {"h": key_digest(key)})
            owner.commit()
        assert _members_of(conn, tenants["a"]["id"]) == 0
    finally:
        conn.close()


def test_a_workers_tenant_session_is_held_to_its_tenant_and_the_system_session_sees_all(
        pg_url, tenants):
    """The owner's side (workers, command line): a session for one tenant works as the
    application role with settle.tenant_id, trusted because the owner logged it in."""
    owner = engine_for(pg_url)
    with tenant_session(owner, tenants["a"]["id"]) as session:
        assert session.execute(text("SELECT count(*) FROM members WHERE tenant_id = :b"),
                               {"b": tenants["b"]["id"]}).scalar() == 0
        assert session.execute(text("SELECT count(*) FROM members WHERE tenant_id = :a"),
                               {"a": tenants["a"]["id"]}).scalar() == 1
    with tenant_session(owner) as session:
        assert session.execute(text("SELECT count(DISTINCT tenant_id) FROM members "
                                    "WHERE tenant_id IN (:a, :b)"),
                               {"a": tenants["a"]["id"], "b": tenants["b"]["id"]}).scalar() == 2


def test_settle_tenant_id_from_a_session_the_web_logged_in_is_ignored(pg_url, tenants):
    """The same setting a worker's session is trusted with means nothing from the web's
    login, even with no key at all."""
    conn = psycopg.connect(_dsn(Settings(database_url=pg_url).app_url()), autocommit=True)
    try:
        conn.execute("SELECT set_config('settle.tenant_id', %s, false)",
                     (str(tenants["b"]["id"]),))
        assert conn.execute("SELECT settle_tenant()").fetchone()[0] is None
        assert _members_of(conn, tenants["b"]["id"]) == 0
    finally:
        conn.close()


def test_the_web_derives_the_application_roles_url_from_the_owners(pg_url):
    settings = Settings(database_url=pg_url, app_database_password="s3cret")
    app_url = make_url(settings.app_url())
    owner_url = make_url(pg_url)
    assert (app_url.username, app_url.password) == ("settle_app", "s3cret")
    assert (app_url.host, app_url.port, app_url.database) == (
        owner_url.host, owner_url.port, owner_url.database)
    explicit = "postgresql+psycopg://someone@db.example/settle"
    assert Settings(database_url=pg_url, app_database_url=explicit).app_url() == explicit
    assert Settings(database_url="sqlite:///x.sqlite3").app_url() == "sqlite:///x.sqlite3"


def test_the_api_works_as_the_application_role(pg_url):
    from api import create_app
    app = create_app(Settings(database_url=pg_url, redis_url=None))
    engine = app.extensions["settle_engine"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == "settle_app"


def test_settle_db_upgrade_gives_the_application_role_the_password_of_its_url(pg_url,
                                                                             monkeypatch):
    from click.testing import CliRunner

    from cli import main
    from settlement.config import get_settings
    password = f"pw-{uuid.uuid4().hex}"
    monkeypatch.setenv("SETTLE_DATABASE_URL", pg_url)
    monkeypatch.setenv("SETTLE_APP_DATABASE_PASSWORD", password)
    get_settings.cache_clear()
    owner = engine_for(pg_url)
    try:
        result = CliRunner().invoke(main, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        with owner.connect() as conn:
            stored = conn.execute(text(
                "SELECT rolpassword FROM pg_authid WHERE rolname = 'settle_app'")).scalar()
        assert stored is not None and password not in stored  # a SCRAM verifier of it
    finally:
        get_settings.cache_clear()
        with owner.connect() as conn:  # the cluster's role: leave it as the others had it
            conn.execute(text("ALTER ROLE settle_app PASSWORD NULL"))
            conn.commit()
