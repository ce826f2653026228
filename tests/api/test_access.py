"""Who may call what: API keys (401), roles (403), tenants (404), and the audit log.

DESIGN.md "Multi-tenancy and access": keys are bound to one tenant and one role; a request
for another tenant's object answers 404; an append-only audit log records who did what.
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

PROBLEM = "application/problem+json"

# Every route but /v1/health, with a request that is valid in every other respect, so that
# only the credentials decide the answer.
ROUTES = {
    "put_retailer": ("PUT", "/v1/retailers/macys", {"json": {"name": "Macy's"}}),
    "post_share_rule": ("POST", "/v1/share-rules",
                        {"json": {"kind": "percent_of_sale", "rate": "5"}}),
    "put_member": ("PUT", "/v1/members/M1", {"json": {"name": "Member One"}}),
    "import_members": ("POST", "/v1/members/import",
                       {"data": b"external_id,name\nM2,Member Two\n",
                        "content_type": "text/csv"}),
    "get_balance": ("GET", "/v1/members/M1/balance", {}),
    "get_statement": ("GET", "/v1/members/M1/statement", {}),
    "post_report": ("POST", "/v1/reports",
                    {"data": (b"transaction_id,order_id,member,retailer,category,event_date,"
                              b"sale_amount,commission_amount,currency,status\n"
                              b"T-9,O-9,M1,macys,apparel,2026-10-01,10.00,1.00,USD,pending\n"),
                     "content_type": "text/csv"}),
    "get_report": ("GET", "/v1/reports/{report_id}", {}),
    "retry_report": ("POST", "/v1/reports/{report_id}/retry", {}),
    "list_keys": ("GET", "/v1/keys", {}),
    "revoke_key": ("DELETE", "/v1/keys/{key_id}", {}),  # a key nobody has (call())
    "plan_run": ("POST", "/v1/settlement-runs", {"json": {"payout_date": "2026-11-15"}}),
    "get_run": ("GET", "/v1/settlement-runs/{run_id}", {}),
    "approve_run": ("POST", "/v1/settlement-runs/{run_id}/approve", {"json": {}}),
    "cancel_run": ("POST", "/v1/settlement-runs/{run_id}/cancel", {}),
    "resume_run": ("POST", "/v1/settlement-runs/{run_id}/resume", {}),
    "get_run_items": ("GET", "/v1/settlement-runs/{run_id}/items", {}),
    "get_run_report_csv": ("GET", "/v1/settlement-runs/{run_id}/report.csv", {}),
    "get_run_report_json": ("GET", "/v1/settlement-runs/{run_id}/report.json", {}),
    "get_member_referrals": ("GET", "/v1/members/M1/referrals", {}),
    "list_referrals": ("GET", "/v1/referrals", {}),
    "review_referral": ("POST", "/v1/members/M1/referral/review",
                        {"json": {"decision": "approve"}}),
    "get_run_skipped": ("GET", "/v1/settlement-runs/{run_id}/skipped", {}),
    "list_reports": ("GET", "/v1/reports", {}),
    "list_runs": ("GET", "/v1/settlement-runs", {}),
    "list_retailers": ("GET", "/v1/retailers", {}),
    "list_share_rules": ("GET", "/v1/share-rules", {}),
    "list_members": ("GET", "/v1/members", {}),
    "get_ledger_health": ("GET", "/v1/health/ledger", {}),
    "post_exchange": ("POST", "/v1/members/M1/exchanges",
                      {"json": {"exit": "amazon", "value": 1000},
                       "headers": {"Idempotency-Key": "k1"}}),
    "list_exchanges": ("GET", "/v1/members/M1/exchanges", {}),
    "get_exchange": ("GET", "/v1/members/M1/exchanges/{exchange_id}", {}),
    "cancel_exchange": ("POST", "/v1/members/M1/exchanges/{exchange_id}/cancel", {}),
    "list_expiring": ("GET", "/v1/expiring", {}),
}
# Which roles may call each route (ROLE_GRANTS in settlement/access/service.py).
ALLOWED = {
    "put_retailer": {"admin"},
    "post_share_rule": {"admin"},
    "put_member": {"admin"},
    "import_members": {"admin"},
    "get_balance": {"operator", "approver", "admin"},
    "get_statement": {"operator", "approver", "admin"},
    "post_report": {"uploader", "admin"},
    "get_report": {"uploader", "operator", "approver", "admin"},
    "retry_report": {"uploader", "admin"},
    "list_keys": {"admin"},
    "revoke_key": {"admin"},
    # Runs: an operator plans (an admin holds the operator grant), only an approver approves.
    "plan_run": {"operator", "admin"},
    "get_run": {"operator", "approver", "admin"},
    "approve_run": {"approver"},
    "cancel_run": {"operator", "admin"},
    "resume_run": {"operator", "admin"},
    "get_run_items": {"operator", "approver", "admin"},
    "get_run_report_csv": {"operator", "approver", "admin"},
    "get_run_report_json": {"operator", "approver", "admin"},
    # Referrals: readers list them, an operator reviews the held ones.
    "get_member_referrals": {"operator", "approver", "admin"},
    "list_referrals": {"operator", "approver", "admin"},
    "review_referral": {"operator", "admin"},
    "get_run_skipped": {"operator", "approver", "admin"},
    # Lists (tests/api/test_lists.py): readers; an uploader lists the reports too.
    "list_reports": {"uploader", "operator", "approver", "admin"},
    "list_runs": {"operator", "approver", "admin"},
    "list_retailers": {"operator", "approver", "admin"},
    "list_share_rules": {"operator", "approver", "admin"},
    "list_members": {"operator", "approver", "admin"},
    "get_ledger_health": {"admin"},
    # Exchanges: the portal's backend asks and cancels for its members (operator); readers
    # list them.
    "post_exchange": {"operator", "admin"},
    "list_exchanges": {"operator", "approver", "admin"},
    "get_exchange": {"operator", "approver", "admin"},
    "cancel_exchange": {"operator", "admin"},
    "list_expiring": {"operator", "approver", "admin"},
}
RUN_ROUTES = sorted(name for name, (_, path, _) in ROUTES.items() if "{run_id}" in path)
ROLES = ("uploader", "operator", "approver", "admin")


def call(client, name: str, headers: dict | None = None, report_id: int = 1,
         run_id: int = 1):
    method, path, kwargs = ROUTES[name]
    kwargs = dict(kwargs)
    headers = {**kwargs.pop("headers", {}), **(headers or {})}
    return client.open(path.format(report_id=report_id, run_id=run_id, key_id=987_654_321,
                                   exchange_id=987_654_321),
                       method=method,
                       headers=headers, **kwargs)


def assert_problem(response, status: int):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["title"]


def api_routes(app) -> set[tuple[str, str]]:
    """(method, rule) of every route the app serves under /v1, but its own documentation."""
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/") or rule.rule.startswith(("/v1/openapi", "/v1/docs")):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.add((method, rule.rule))
    return out


def test_the_route_table_of_these_tests_covers_every_api_route(app):
    listed = {(m, p.replace("{report_id}", "<int:report_id>").replace("{run_id}", "<int:run_id>")
               .replace("{key_id}", "<int:key_id>").replace("{exchange_id}", "<int:exchange_id>"))
              for m, p, _ in ROUTES.values()}
    served = {(m, r.replace("<slug>", "macys").replace("<external_id>", "M1"))
              for m, r in api_routes(app)} - {("GET", "/v1/health"), ("GET", "/v1/ready"),
                                              ("POST", "/v1/webhooks/paypal")}
    assert served == listed


# ---------------------------------------------------------------------------------------
# 401: no key, a wrong key, a revoked key


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_every_route_but_health_answers_401_without_a_key(client, name):
    assert_problem(call(client, name), 401)


@pytest.mark.parametrize("header", [
    "Bearer sk_000000000000_not-a-real-key",
    "Bearer not-even-shaped-like-a-key",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "sk_000000000000_no-scheme",
], ids=["unknown-key", "malformed-key", "empty-key", "basic-scheme", "no-scheme"])
def test_every_route_but_health_answers_401_with_a_wrong_key(client, header):
    for name in ROUTES:
        assert_problem(call(client, name, {"Authorization": header}), 401)


def test_a_real_key_prefix_with_a_wrong_secret_answers_401(client, tenant):
    prefix = tenant.keys["admin"].rsplit("_", 1)[0]
    forged = {"Authorization": f"Bearer {prefix}_{'A' * 43}"}
    for name in ROUTES:
        assert_problem(call(client, name, forged), 401)


def test_every_route_answers_401_with_a_revoked_key_and_other_keys_keep_working(
        client, tenant, revoke):
    revoke(tenant, tenant.keys["admin"])
    for name in ROUTES:
        assert_problem(call(client, name, tenant.auth("admin")), 401)
    # Revoking one key leaves the tenant's other keys alone.
    assert call(client, "post_report", tenant.auth("uploader")).status_code == 202


def test_a_refused_request_writes_nothing(client, tenant, audit_rows, engine):
    for name in ROUTES:
        call(client, name, {"Authorization": "Bearer sk_000000000000_nope"})
        call(client, name)
    assert audit_rows(tenant) == []
    with engine.connect() as conn:
        for table in ("retailers", "members", "share_rules", "reports", "settlement_runs"):
            count = conn.execute(text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"),
                                 {"t": tenant.id}).scalar_one()
            assert count == 0, table


def test_health_answers_without_a_key(client):
    response = client.get("/v1/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_credentials_are_checked_before_the_body_is_validated(client, tenant):
    invalid = [("PUT", "/v1/retailers/macys", {"json": {}}),
               ("POST", "/v1/share-rules", {"json": {"kind": "bogus"}}),
               ("PUT", "/v1/members/M1", {"json": {"payout_method": "venmo"}}),
               ("POST", "/v1/reports?format=nope", {"data": b"x", "content_type": "text/csv"}),
               ("POST", "/v1/settlement-runs", {"json": {"payout_date": "not-a-date"}})]
    answers = []
    for method, path, kwargs in invalid:
        answers.append(client.open(path, method=method, **kwargs).status_code)
        answers.append(client.open(path, method=method, headers=tenant.auth("approver"),
                                   **kwargs).status_code)
    assert answers == [401, 403] * len(invalid)


# ---------------------------------------------------------------------------------------
# 403: roles


@pytest.fixture
def populated(api):
    """A tenant with a retailer, a member and a report, so that allowed calls succeed."""
    api.setup(retailers=("macys",), members=("M1",))
    report = api.ingest(api.row("T-1"))
    return api, report["id"]


@pytest.fixture
def planned_run(populated) -> int:
    """A run planned by the populated tenant's operator (nothing is payable in it, so that
    approving it pays nobody)."""
    api, _ = populated
    return api.planned("2026-11-15")["id"]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_call_exactly_the_routes_its_grants_allow(client, populated, planned_run,
                                                                role):
    api, report_id = populated
    for name in ROUTES:
        response = call(client, name, api.h(role), report_id=report_id, run_id=planned_run)
        if role in ALLOWED[name]:
            assert response.status_code not in (401, 403), (name, role)
        else:
            assert_problem(response, 403)
            assert role in response.get_json()["detail"]


def test_an_uploader_cannot_put_retailers(api, engine):
    response = api.put_retailer("macys", role="uploader")
    assert_problem(response, 403)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM retailers WHERE tenant_id = :t"),
                            {"t": api.tenant.id}).scalar_one() == 0


def test_an_operator_can_read_balances(populated):
    api, _ = populated
    assert api.balance("M1", role="operator") == {
        "currency": "USD", "pending": "6.00", "available": "0.00", "reserved": "0.00",
        "paid": "0.00"}


def test_an_uploader_can_read_its_report_status(populated):
    api, report_id = populated
    report = api.report(report_id, role="uploader")
    assert report["id"] == report_id and report["status"] == "completed"


def test_an_uploader_cannot_read_balances(populated):
    api, _ = populated
    response = api.client.get("/v1/members/M1/balance", headers=api.h("uploader"))
    assert_problem(response, 403)


def run_count(engine, tenant) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM settlement_runs WHERE tenant_id = :t"),
                            {"t": tenant.id}).scalar_one()


def test_an_uploader_or_an_approver_cannot_plan_a_run(api, engine):
    for role in ("uploader", "approver"):
        response = api.plan("2026-11-15", role=role)
        assert_problem(response, 403)
        assert role in response.get_json()["detail"]
    assert run_count(engine, api.tenant) == 0


def test_an_operator_plans_a_run_and_an_approver_approves_it(api):
    run = api.planned("2026-11-15", role="operator")
    assert run["status"] == "planned"
    approved = api.approve(run["id"])
    assert approved.status_code == 202, approved.get_json()
    assert approved.get_json()["approved_by"] != approved.get_json()["planned_by"]


def test_an_operator_cannot_approve_a_run(api):
    run_id = api.planned("2026-11-15")["id"]
    for role in ("operator", "admin", "uploader"):
        assert_problem(api.approve(run_id, role=role), 403)
    assert api.run(run_id)["status"] == "planned"


def test_an_approver_cannot_cancel_a_run_and_an_operator_can(api):
    run_id = api.planned("2026-11-15")["id"]
    assert_problem(api.cancel(run_id, role="approver"), 403)
    assert_problem(api.cancel(run_id, role="uploader"), 403)
    assert api.run(run_id)["status"] == "planned"
    cancelled = api.cancel(run_id, role="operator")
    assert cancelled.status_code == 200, cancelled.get_json()
    assert cancelled.get_json()["status"] == "cancelled"


def test_a_planner_cannot_approve_its_own_plan_even_with_an_approver_key_another_key_can(
        api, engine, key_id, add_key):
    """Principals are keys: four eyes means two keys. A plan made in the name of an approver
    key (through the domain: no API key holds both grants) is refused to that key, 403, and
    approved by another key of the approver role."""
    from sqlalchemy.orm import Session

    from settlement.runs import plan as runs

    planner = f"key:{key_id(api.tenant.keys['approver'])}"
    with Session(engine) as session:
        run = runs.plan_run(session, api.tenant.id, dt.date(2026, 11, 15), planner)
        session.commit()
        run_id = run.number  # the API's name for it
    refused = api.approve(run_id, role="approver")
    assert_problem(refused, 403)
    assert [e["code"] for e in refused.get_json()["errors"]] == ["same_principal"]
    assert api.run(run_id)["status"] == "planned"
    second = add_key(api.tenant, "approver")
    approved = api.approve(run_id, headers=second)
    assert approved.status_code == 202, approved.get_json()
    body = approved.get_json()
    assert body["planned_by"] == planner and body["approved_by"] not in (planner, None)
    # Approved once: approving again is a conflict, not a second approval.
    assert_problem(api.approve(run_id, headers=second), 409)


# ---------------------------------------------------------------------------------------
# 404: tenants never see each other's objects


def test_every_object_route_answers_404_for_another_tenants_objects(app, client, api_for):
    a = api_for().setup(retailers=("macys",), members=("M1",))
    report_id = a.ingest(a.row("T-1"))["id"]
    assert a.balance("M1")["pending"] == "6.00"
    b = api_for()
    # The object routes (those naming an object in their path) that read: all listed here.
    object_reads = {r for m, r in api_routes(app) if m == "GET" and "<" in r}
    run_id = a.planned("2026-11-15")["id"]
    paths = {"/v1/reports/<int:report_id>": f"/v1/reports/{report_id}",
             "/v1/members/<external_id>/balance": "/v1/members/M1/balance",
             "/v1/members/<external_id>/statement": "/v1/members/M1/statement",
             "/v1/members/<external_id>/referrals": "/v1/members/M1/referrals",
             "/v1/settlement-runs/<int:run_id>": f"/v1/settlement-runs/{run_id}",
             "/v1/settlement-runs/<int:run_id>/items": f"/v1/settlement-runs/{run_id}/items",
             "/v1/settlement-runs/<int:run_id>/report.csv":
                 f"/v1/settlement-runs/{run_id}/report.csv",
             "/v1/settlement-runs/<int:run_id>/report.json":
                 f"/v1/settlement-runs/{run_id}/report.json",
             "/v1/settlement-runs/<int:run_id>/skipped":
                 f"/v1/settlement-runs/{run_id}/skipped",
             "/v1/members/<external_id>/exchanges": "/v1/members/M1/exchanges",
             # tests/exchanges/test_exchanges_api.py looks up real exchanges across tenants
             "/v1/members/<external_id>/exchanges/<int:exchange_id>":
                 "/v1/members/M1/exchanges/1"}
    assert object_reads == set(paths)
    for path in paths.values():
        for role in ("operator", "approver", "admin"):
            assert_problem(client.get(path, headers=b.h(role)), 404)
    # The uploader reads report status only.
    assert_problem(client.get(paths["/v1/reports/<int:report_id>"], headers=b.h("uploader")),
                   404)
    # Another tenant's object looks exactly like one that never existed.
    theirs = client.get(f"/v1/reports/{report_id}", headers=b.h("admin")).get_json()
    never = client.get("/v1/reports/987654321", headers=b.h("admin")).get_json()
    assert {k: theirs[k] for k in ("status", "title")} == {k: never[k] for k in ("status", "title")}
    # ...and the owner still sees it.
    assert a.report(report_id)["counts"]["inserted"] == 1


def test_every_run_route_answers_404_for_another_tenants_run_and_changes_nothing(
        client, api_for, audit_rows):
    a = api_for().setup(retailers=("macys",), members=("M1",))
    run = a.planned("2026-11-15")
    b = api_for()
    for name in RUN_ROUTES:
        allowed = sorted(ALLOWED[name])
        for role in allowed:
            theirs = call(client, name, b.h(role), run_id=run["id"])
            assert_problem(theirs, 404)
            never = call(client, name, b.h(role), run_id=987654321)
            assert_problem(never, 404)
            assert theirs.get_json()["title"] == never.get_json()["title"], name
    # B approving or cancelling A's run did neither, and wrote nothing in either log.
    assert a.run(run["id"]) == run
    assert audit_rows(b.tenant) == []
    assert [r["action"] for r in audit_rows(a.tenant)][-1] == "run.planned"
    # B may plan the same date for itself: runs are one per tenant and date. Each tenant
    # numbers its own runs, so B's first run is run 1 too: another row, A's is untouched.
    assert b.planned("2026-11-15")["id"] == run["id"] == 1
    assert a.run(run["id"]) == run


def test_an_object_id_beyond_64_bits_answers_404_like_any_unknown_id(client, tenant):
    huge = 2 ** 64 + 1
    for name in ["get_report", *RUN_ROUTES]:
        role = sorted(ALLOWED[name])[0]
        assert_problem(call(client, name, tenant.auth(role), report_id=huge, run_id=huge), 404)


def test_the_report_of_another_tenant_answers_404(api_for):
    a, b = api_for().setup(members=()), api_for()
    report_id = a.ingest(a.row("T-1", member="M1"))["id"]
    response = b.client.get(f"/v1/reports/{report_id}", headers=b.h("uploader"))
    assert_problem(response, 404)


def test_put_retailer_of_the_same_slug_in_two_tenants_creates_two_independent_retailers(
        api_for, engine, audit_rows):
    a, b = api_for(), api_for()
    ra = a.put_retailer("macys", name="Macy's A", category="apparel",
                        network_ids={"cj": "4518721"})
    rb = b.put_retailer("macys", name="Macy's B", category="department-stores",
                        network_ids={"cj": "4518721"})
    assert ra.status_code == rb.status_code == 200
    assert ra.get_json()["name"] == "Macy's A" and rb.get_json()["name"] == "Macy's B"
    # Both were created, neither updated the other.
    assert [r["action"] for r in audit_rows(a.tenant)] == ["retailer.created"]
    assert [r["action"] for r in audit_rows(b.tenant)] == ["retailer.created"]
    assert b.put_retailer("macys", name="Macy's B2").status_code == 200
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT tenant_id, name, category FROM retailers WHERE slug = 'macys' "
            "AND tenant_id IN (:a, :b) ORDER BY tenant_id"),
            {"a": a.tenant.id, "b": b.tenant.id}).all()
        ids = conn.execute(text(
            "SELECT tenant_id, external_id FROM retailer_network_ids "
            "WHERE tenant_id IN (:a, :b) ORDER BY tenant_id"),
            {"a": a.tenant.id, "b": b.tenant.id}).all()
    assert [tuple(r) for r in rows] == [(a.tenant.id, "Macy's A", "apparel"),
                                        (b.tenant.id, "Macy's B2", None)]
    # B's update dropped its network ids; A's are untouched.
    assert [tuple(r) for r in ids] == [(a.tenant.id, "4518721")]


def test_put_member_of_the_same_external_id_in_two_tenants_creates_two_members(api_for):
    a, b = api_for(), api_for()
    assert a.put_member("M1", name="In A").get_json()["created"] is True
    assert b.put_member("M1", name="In B").get_json()["created"] is True
    assert a.put_member("M1", name="In A").get_json()["created"] is False


def test_a_share_rule_naming_another_tenants_retailer_is_refused_as_unknown_retailer(
        api_for, engine):
    a, b = api_for(), api_for()
    assert a.put_retailer("only-in-a").status_code == 200
    response = b.rule(retailer="only-in-a", kind="percent_of_sale", rate="5")
    assert_problem(response, 422)
    assert [(e["field"], e["code"]) for e in response.get_json()["errors"]] == [
        ("retailer", "unknown_retailer")]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM share_rules WHERE tenant_id IN (:a, :b)"),
                            {"a": a.tenant.id, "b": b.tenant.id}).scalar_one() == 0


def test_a_report_line_naming_another_tenants_retailer_is_refused_as_unknown_retailer(
        api_for):
    a, b = api_for(), api_for()
    a.setup(retailers=("only-in-a",), members=())
    b.setup(retailers=("macys",), members=("M1",))
    report = b.ingest(b.row("T-1", retailer="only-in-a"), b.row("T-2"))
    assert report["counts"]["inserted"] == 1 and report["counts"]["rejected"] == 1
    assert [(e["line"], e["field"], e["code"]) for e in report["errors"]] == [
        (2, "retailer", "unknown_retailer")]


def test_a_member_created_in_one_tenant_does_not_attach_another_tenants_lines(
        isolated_api_for):
    a, b = isolated_api_for(), isolated_api_for()
    a.setup(retailers=("macys",), members=())
    assert a.ingest(a.row("T-1", member="M7"))["counts"]["unattributed"] == 1
    assert b.put_member("M7").status_code == 200
    assert b.money("M7") == ("0.00", "0.00")
    assert a.put_member("M7").status_code == 200
    assert a.money("M7") == ("6.00", "0.00")


def test_the_same_file_from_two_tenants_is_two_reports_not_a_duplicate(api_for):
    a, b = api_for(), api_for()
    for t in (a, b):
        t.setup(retailers=("macys",), members=("M1",))
    body = a.csv(a.row("T-1"))
    first, second = a.upload(body), b.upload(body)
    assert first.status_code == second.status_code == 202
    assert second.get_json()["duplicate"] is False
    assert a.money("M1") == b.money("M1") == ("6.00", "0.00")


def test_postgres_tables_scoped_by_tenant_have_row_level_security(pg_url):
    from settlement.db import engine_for
    with engine_for(pg_url).connect() as conn:
        scoped = set(conn.execute(text(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'tenant_id' "
            "AND table_schema = 'public'")).scalars())
        protected = set(conn.execute(text(
            "SELECT relname FROM pg_class WHERE relrowsecurity AND relkind IN ('r', 'p')"))
            .scalars())
    assert scoped, "no table has tenant_id?"
    assert sorted(scoped - protected) == []


# ---------------------------------------------------------------------------------------
# The audit log


def test_every_write_leaves_an_audit_row_naming_the_key_that_did_it(
        api, audit_rows, key_id, client):
    admin, uploader = f"key:{key_id(api.tenant.keys['admin'])}", \
        f"key:{key_id(api.tenant.keys['uploader'])}"
    assert api.put_retailer("macys").status_code == 200
    assert api.put_retailer("macys", name="Macy's").status_code == 200
    rule = api.rule(retailer="macys", kind="percent_of_sale", rate="5")
    assert rule.status_code == 201
    assert api.put_member("M1").status_code == 200
    imported = client.post("/v1/members/import", data=b"external_id,name\nM2,Two\nM3,Three\n",
                           content_type="text/csv", headers=api.h("admin"))
    assert imported.status_code == 200
    upload = api.upload(api.csv(api.row("T-1")))
    assert upload.status_code == 202
    report_id = upload.get_json()["id"]
    # Refused writes and a duplicate upload change nothing, so they add no row.
    assert api.put_member("M4", email="nope").status_code == 422
    assert api.upload(api.csv(api.row("T-1"))).status_code == 200

    rows = audit_rows(api.tenant)
    assert [(r["principal"], r["action"], r["object_type"], r["object_id"]) for r in rows] == [
        (admin, "retailer.created", "retailer", "macys"),
        (admin, "retailer.updated", "retailer", "macys"),
        (admin, "share_rule.created", "share_rule", str(rule.get_json()["id"])),
        (admin, "member.upserted", "member", "M1"),
        (admin, "members.imported", "member", None),
        (uploader, "report.uploaded", "report", str(report_id)),
    ]
    assert rows[4]["detail"] == {"created": 2, "updated": 0, "unchanged": 0}
    assert rows[5]["detail"]["format"] == "generic"


def test_planning_approving_and_cancelling_runs_leave_audit_rows_naming_the_key(
        api, audit_rows, key_id):
    operator = f"key:{key_id(api.tenant.keys['operator'])}"
    approver = f"key:{key_id(api.tenant.keys['approver'])}"
    first = api.planned("2026-11-15")
    approved = api.approve(first["id"], plan_hash=first["plan_hash"])
    assert approved.status_code == 202, approved.get_json()
    second = api.planned("2027-02-15")
    assert api.cancel(second["id"]).status_code == 200
    # Refused attempts change nothing, so they add no row.
    assert api.plan("2026-11-15").status_code == 409
    assert api.plan("2026-11-16").status_code == 422
    assert api.approve(second["id"]).status_code == 409
    assert api.cancel(first["id"]).status_code == 409
    assert api.approve(first["id"], role="operator").status_code == 403

    rows = [r for r in audit_rows(api.tenant) if r["action"].startswith("run.")]
    assert [(r["principal"], r["action"], r["object_type"], r["object_id"]) for r in rows] == [
        (operator, "run.planned", "settlement_run", str(first["id"])),
        (approver, "run.approved", "settlement_run", str(first["id"])),
        (operator, "run.planned", "settlement_run", str(second["id"])),
        (operator, "run.cancelled", "settlement_run", str(second["id"])),
    ]
    assert rows[0]["detail"] == {"payout_date": "2026-11-15"}
    assert rows[1]["detail"] == {"plan_hash": first["plan_hash"]}
    assert rows[2]["detail"] == {"payout_date": "2027-02-15"}
