"""The console over HTTP (Flask's test client; the browser tests drive the same pages in
Chromium): sign-in and its cookie, CSRF on every POST, roles, tenant isolation, the run
pages, reports, members, audit."""
from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.access.service import key_digest, revoke_key
from settlement.config import Settings
from settlement.models import ApiKey
from sandboxes.paypal import serve
from tests.api.conftest import TenantApi
from tests.console.helpers import CLIENT_ID, CLIENT_SECRET, PAYOUT, POLICY, csrf_of, payable


@pytest.fixture(scope="module")
def paypal():
    server, base_url = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                             polls_per_step=0)
    yield base_url
    server.shutdown()


@pytest.fixture
def app(db_url, paypal, tmp_path):
    from api import create_app
    return create_app(Settings(
        database_url=db_url, redis_url=None, paypal_base_url=paypal,
        paypal_client_id=CLIENT_ID, paypal_client_secret=CLIENT_SECRET,
        outbox_dir=str(tmp_path / "outbox"), payout_poll_seconds=0.01, payout_max_polls=20,
        secret_key="console-test-secret"))


@pytest.fixture
def api(app, make_tenant):
    return payable(TenantApi(app.test_client(), make_tenant(**POLICY)))


def signed_in(app, key: str):
    """A browser-like client (its own cookie jar) signed in with `key`."""
    browser = app.test_client()
    token = csrf_of(browser.get("/console/sign-in").get_data(as_text=True))
    response = browser.post("/console/sign-in", data={"key": key, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def post(browser, url: str, data: dict | None = None, page: str | None = None):
    """POST a console form the way the page does: with the page's CSRF token."""
    token = csrf_of(browser.get(page or "/console/runs").get_data(as_text=True))
    return browser.post(url, data={**(data or {}), "csrf_token": token})


def plan(browser) -> int:
    response = post(browser, "/console/runs", {"payout_date": PAYOUT})
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def test_sign_in_sets_a_signed_httponly_samesite_strict_expiring_cookie_without_the_key(
        app, api):
    browser = app.test_client()
    token = csrf_of(browser.get("/console/sign-in").get_data(as_text=True))
    key = api.tenant.keys["operator"]
    response = browser.post("/console/sign-in", data={"key": key, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/console/runs"
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie")
                 if c.startswith("settle_console=")]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "expires", "path"} <= attributes
    assert "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert key not in cookie and key[len("sk_"):].split("_", 1)[1] not in cookie
    assert browser.get("/console/runs").status_code == 200


def test_a_wrong_key_is_refused_and_no_page_opens(app, api):
    browser = app.test_client()
    token = csrf_of(browser.get("/console/sign-in").get_data(as_text=True))
    response = browser.post("/console/sign-in", data={
        "key": api.tenant.keys["operator"] + "x", "csrf_token": token})
    assert response.status_code == 401
    assert "not accepted" in response.get_data(as_text=True)
    page = browser.get("/console/runs")
    assert page.status_code == 302 and page.headers["Location"].startswith("/console/sign-in")


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(app, api):
    browser = signed_in(app, api.tenant.keys["operator"])
    response = browser.post("/console/runs", data={"payout_date": PAYOUT})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    wrong = browser.post("/console/runs", data={"payout_date": PAYOUT, "csrf_token": "x" * 43})
    assert wrong.status_code == 400
    assert api.client.get("/v1/settlement-runs", headers=api.h("operator")).get_json()[
        "runs"] == []


def test_sign_out_ends_the_session_and_needs_the_csrf_token(app, api):
    browser = signed_in(app, api.tenant.keys["operator"])
    assert browser.post("/console/sign-out").status_code == 400
    assert browser.get("/console/runs").status_code == 200
    assert post(browser, "/console/sign-out").status_code == 302
    assert browser.get("/console/runs").status_code == 302


def test_a_revoked_key_ends_its_console_sessions_at_once(app, api, engine):
    browser = signed_in(app, api.tenant.keys["operator"])
    assert browser.get("/console/runs").status_code == 200
    prefix = api.tenant.keys["operator"].split("_")[1]
    with Session(engine) as session:
        key_id = session.scalar(select(ApiKey.number).where(ApiKey.prefix == prefix))
        assert revoke_key(session, api.tenant.id, key_id)
        session.commit()
    assert browser.get("/console/runs").status_code == 302


def test_the_planner_cannot_approve_and_another_approver_sees_the_plan_hash(app, api):
    operator = signed_in(app, api.tenant.keys["operator"])
    run_id = plan(operator)
    page = operator.get(f"/console/runs/{run_id}").get_data(as_text=True)
    assert 'id="approve"' not in page  # an operator key has no approval
    run = api.run(run_id)
    approver = signed_in(app, api.tenant.keys["approver"])
    page = approver.get(f"/console/runs/{run_id}").get_data(as_text=True)
    assert f"Approve plan {run['plan_hash'][:12]}" in page and run["plan_hash"] in page
    # Totals by method and skips by reason, amounts in the tenant's currency.
    assert "$1,246.50" in page and "$20.00" in page
    assert "below_minimum" in page and "no_mailing_address" in page
    response = post(approver, f"/console/runs/{run_id}/approve",
                    {"plan_hash": run["plan_hash"]}, page=f"/console/runs/{run_id}")
    assert response.status_code == 302
    final = api.run(run_id)
    assert final["status"] == "completed" and final["approved_by"] != final["planned_by"]


def test_an_approval_of_another_plan_hash_is_refused(app, api):
    run_id = plan(signed_in(app, api.tenant.keys["operator"]))
    approver = signed_in(app, api.tenant.keys["approver"])
    post(approver, f"/console/runs/{run_id}/approve", {"plan_hash": "0" * 64},
         page=f"/console/runs/{run_id}")
    page = approver.get(f"/console/runs/{run_id}").get_data(as_text=True)
    assert "Not approved" in page
    assert api.run(run_id)["status"] == "planned"


def test_an_admin_who_planned_a_run_is_refused_when_approving_it(app, api):
    admin = signed_in(app, api.tenant.keys["admin"])
    run_id = plan(admin)
    page = admin.get(f"/console/runs/{run_id}").get_data(as_text=True)
    assert "You planned this run" in page
    # Even forged past the page (an admin key holds no approver grant: 403).
    response = post(admin, f"/console/runs/{run_id}/approve", {}, page=f"/console/runs/{run_id}")
    assert response.status_code == 403
    assert api.run(run_id)["status"] == "planned"


def test_the_console_report_download_is_the_apis_report(app, api):
    run_id = plan(signed_in(app, api.tenant.keys["operator"]))
    approver = signed_in(app, api.tenant.keys["approver"])
    post(approver, f"/console/runs/{run_id}/approve", {"plan_hash": api.run(run_id)["plan_hash"]},
         page=f"/console/runs/{run_id}")
    ours = approver.get(f"/console/runs/{run_id}/report.csv")
    theirs = api.client.get(f"/v1/settlement-runs/{run_id}/report.csv",
                            headers=api.h("operator"))
    assert ours.status_code == 200 and ours.mimetype == "text/csv"
    assert ours.get_data() == theirs.get_data()
    page = approver.get(f"/console/runs/{run_id}").get_data(as_text=True)
    files = [line for line in page.splitlines() if f"/console/runs/{run_id}/files/" in line]
    assert files, "the check file is listed"
    name = files[0].split("/files/")[1].split('"')[0]
    assert approver.get(f"/console/runs/{run_id}/files/{name}").status_code == 200
    assert approver.get(f"/console/runs/{run_id}/files/..%2F..%2Fsecret").status_code == 404


def test_skipped_members_are_listed_by_reason(app, api):
    browser = signed_in(app, api.tenant.keys["operator"])
    run_id = plan(browser)
    page = browser.get(f"/console/runs/{run_id}/skipped?reason=below_minimum").get_data(
        as_text=True)
    assert ">small<" in page and ">homeless<" not in page and "$3.00" in page


def test_another_tenants_run_report_and_member_are_not_found(app, api, make_tenant):
    run_id = plan(signed_in(app, api.tenant.keys["operator"]))
    other = make_tenant(**POLICY)
    stranger = signed_in(app, other.keys["admin"])
    for url in (f"/console/runs/{run_id}", f"/console/runs/{run_id}/report.csv",
                f"/console/runs/{run_id}/progress.json", f"/console/runs/{run_id}/skipped",
                "/console/members/pp-ann", "/console/reports/1"):
        assert stranger.get(url).status_code == 404, url
    assert "pp-ann" not in stranger.get("/console/members").get_data(as_text=True)
    assert f"/console/runs/{run_id}\"" not in stranger.get("/console/runs").get_data(
        as_text=True)
    response = post(stranger, f"/console/runs/{run_id}/cancel")
    assert api.run(run_id)["status"] == "planned", response.status_code


def test_pages_follow_the_keys_role(app, api):
    uploader = signed_in(app, api.tenant.keys["uploader"])
    assert uploader.get("/console/reports").status_code == 200
    assert 'id="upload-form"' in uploader.get("/console/reports").get_data(as_text=True)
    for url in ("/console/runs", "/console/members", "/console/audit", "/console/queues"):
        assert uploader.get(url).status_code == 403, url
    operator = signed_in(app, api.tenant.keys["operator"])
    assert 'id="upload-form"' not in operator.get("/console/reports").get_data(as_text=True)
    assert operator.get("/console/queues").status_code == 403
    approver = signed_in(app, api.tenant.keys["approver"])
    assert 'id="plan-form"' not in approver.get("/console/runs").get_data(as_text=True)
    assert post(approver, "/console/runs", {"payout_date": PAYOUT}).status_code == 403
    admin = signed_in(app, api.tenant.keys["admin"])
    assert "no queues to show" in admin.get("/console/queues").get_data(as_text=True)


def test_todays_uploads_show_counts_and_a_reports_errors(app, api):
    browser = signed_in(app, api.tenant.keys["uploader"])
    body = ("transaction_id,order_id,member,retailer,category,event_date,sale_amount,"
            "commission_amount,currency,status\n"
            "T-9,O-9,pp-ann,macys,apparel,2026-10-01,10.00,1.00,USD,pending\n"
            "T-10,O-10,pp-ann,macys,apparel,2026-10-01,ten,1.00,USD,pending\n").encode()
    token = csrf_of(browser.get("/console/reports").get_data(as_text=True))
    response = browser.post("/console/reports", data={
        "csrf_token": token, "format": "generic", "file": (io.BytesIO(body), "october.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    page = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "completed" in page and "sale_amount" in page
    listing = browser.get("/console/reports").get_data(as_text=True)
    assert listing.count("/console/reports/") >= 2  # the fixture's upload and this one


def test_member_page_shows_balance_statement_and_commissions_in_the_tenants_currency(app, api):
    page = signed_in(app, api.tenant.keys["operator"]).get("/console/members/pp-bob")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<td class="num" data-value="123450">$1,234.50</td>' in text
    assert "T-pp-bob" in text


def test_the_audit_log_lists_console_actions_and_filters_by_action(app, api):
    browser = signed_in(app, api.tenant.keys["operator"])
    run_id = plan(browser)
    page = browser.get("/console/audit?action=run.").get_data(as_text=True)
    assert "<td>run.planned</td>" in page and "<td>console.signed_in</td>" not in page
    assert f"settlement_run {run_id}" in page
    assert "<td>console.signed_in</td>" in browser.get("/console/audit").get_data(as_text=True)


def test_dates_are_shown_in_the_tenants_time_zone(app, api):
    browser = signed_in(app, api.tenant.keys["operator"])
    plan(browser)
    page = browser.get("/console/runs").get_data(as_text=True)
    # The tenant is in New York: its abbreviation, whichever half of the year it is.
    assert " EST</td>" in page or " EDT</td>" in page
    assert " UTC</td>" not in page


def _gauge(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_show_items_of_executing_runs_and_the_last_ledger_check(app, make_tenant,
                                                                        engine):
    from settlement.ledger.check import check_tenants
    from tests.console.test_browser import BROWSER_MEMBERS
    from tests.console.test_browser import POLICY as AMEX_POLICY
    api = payable(TenantApi(app.test_client(), make_tenant(**AMEX_POLICY)), BROWSER_MEMBERS)
    before = app.test_client().get("/metrics").get_data(as_text=True)
    run = api.planned(PAYOUT)
    assert api.approve(run["id"], plan_hash=run["plan_hash"]).status_code == 202
    assert api.run(run["id"])["status"] == "executing"  # Amex's answer file is awaited
    check_tenants(engine, api.tenant.slug, "cli:test")
    after = app.test_client().get("/metrics").get_data(as_text=True)
    assert _gauge(after, "settle_run_items") - _gauge(before, "settle_run_items") == 4
    assert _gauge(after, "settle_ledger_check_ok", tenant=api.tenant.slug) == 1


def _expire_key(engine, tenant, role: str) -> None:
    prefix = tenant.keys[role].split("_")[1]
    with Session(engine) as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        row.expires_at = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
        session.commit()


def test_an_expired_key_cannot_sign_in_and_ends_its_sessions(app, api, engine):
    browser = signed_in(app, api.tenant.keys["operator"])
    _expire_key(engine, api.tenant, "operator")
    assert browser.get("/console/runs").status_code == 302
    fresh = app.test_client()
    token = csrf_of(fresh.get("/console/sign-in").get_data(as_text=True))
    response = fresh.post("/console/sign-in", data={"key": api.tenant.keys["operator"],
                                                    "csrf_token": token})
    assert response.status_code == 401


def test_a_session_past_its_lifetime_is_refused_whatever_the_browser_keeps(app, api,
                                                                           engine):
    """A cookie signed by us, for a valid key, whose lifetime ended (a browser may keep a
    cookie past its Expires): the server's own expiry refuses it."""
    prefix = api.tenant.keys["operator"].split("_")[1]
    with Session(engine) as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix))
    serializer = app.session_interface.get_signing_serializer(app)
    browser = app.test_client()
    for expires, status in ((2 ** 40, 200), (1_000_000_000, 302)):  # 36812 AD, and 2001
        browser.set_cookie("settle_console", serializer.dumps(
            {"kid": key_id, "kh": key_digest(api.tenant.keys["operator"]), "exp": expires,
             "csrf_token": "t"}), path="/console")
        assert browser.get("/console/runs").status_code == status


def test_a_cookie_signed_with_another_secret_is_not_a_session(app, api, db_url):
    from api import create_app
    other = create_app(Settings(database_url=db_url, redis_url=None, secret_key="other"))
    browser = signed_in(other, api.tenant.keys["operator"])
    cookie = browser.get_cookie("settle_console", path="/console")
    victim = app.test_client()
    victim.set_cookie("settle_console", cookie.value, path="/console")
    assert victim.get("/console/runs").status_code == 302


def test_sign_in_returns_to_the_page_asked_for_but_never_off_the_console(app, api):
    browser = app.test_client()
    asked = browser.get("/console/members?q=pp")
    assert asked.status_code == 302 and "next=" in asked.headers["Location"]
    form = browser.get(asked.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/console/members?q=pp"' in form
    for target, lands in (("/console/members?q=pp", "/console/members?q=pp"),
                          ("//evil.example/console/", "/console/runs"),
                          ("https://evil.example/", "/console/runs")):
        fresh = app.test_client()
        token = csrf_of(fresh.get("/console/sign-in").get_data(as_text=True))
        response = fresh.post("/console/sign-in", data={
            "key": api.tenant.keys["operator"], "csrf_token": token, "next": target})
        assert response.headers["Location"] == lands


def test_member_pages_follow_one_another_without_overlap(app, make_tenant):
    tenant = make_tenant()
    client = app.test_client()
    for n in range(55):
        assert client.put(f"/v1/members/P{n:03d}", json={"name": f"P {n}"},
                          headers=tenant.auth("admin")).status_code == 200
    browser = signed_in(app, tenant.keys["operator"])
    first = browser.get("/console/members").get_data(as_text=True)
    shown = re.findall(r'href="/console/members/(P\d+)"', first)
    assert len(shown) == 50
    next_link = re.search(r'href="([^"]+)" class="next"', first).group(1).replace("&amp;", "&")
    second = browser.get(next_link).get_data(as_text=True)
    rest = re.findall(r'href="/console/members/(P\d+)"', second)
    assert sorted(shown + rest) == [f"P{n:03d}" for n in range(55)]
    assert 'class="next"' not in second
