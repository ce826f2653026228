"""The console in a real headless Chromium: an operator signs in and plans, the planner's
approval is refused, a POST without the CSRF token is refused, a wrong key is refused, an
approver approves the plan by its hash, the page follows the run live until it completes,
and the report downloaded in the browser is the API's. Screenshots of every page visited
land in var/screens/ when a test fails (and in $CONSOLE_SCREENS_DIR, for the README, when
that is set)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from settlement.config import Settings
from sandboxes.partners import respond, unanswered
from sandboxes.paypal import serve
from tests.api.conftest import TenantApi
from tests.console.browser import SCREENS, Pages, ServedApp, browser_binaries, start_chromium
from tests.console.helpers import CLIENT_ID, CLIENT_SECRET, MEMBERS, PAYOUT, payable

METHODS = {"check": {"enabled": True}, "paypal": {"enabled": True},
           "amex_mr": {"enabled": True, "points_per_major_unit": 100, "minimum_points": 500,
                       "eligible_cards": ["gold", "platinum", "green"]}}
# Amex's partner answers a transfer file later: the run stays executing until then.
BROWSER_MEMBERS = {**MEMBERS, "amex": (
    {"payout_method": "amex_mr", "amex_account": "MR123456", "amex_card": "gold"}, "7.00")}
POLICY = {"payouts": {"dates": ["02-15", "05-15", "08-15", "11-15"], "minimum": "5.01",
                      "methods": METHODS}}
WAIT_SECONDS = 30


@pytest.fixture
def db_url(pg_url):
    """The browser tests run on PostgreSQL only (the production database)."""
    return pg_url


@pytest.fixture
def paypal():
    server, base_url = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                             polls_per_step=0)
    yield base_url
    server.shutdown()


@pytest.fixture
def console(request, db_url, paypal, make_tenant, tmp_path):
    """(driver, pages, served app, TenantApi, outbox): Chromium on the app served from a
    thread with in-process jobs and the local PayPal sandbox."""
    browser_binaries()
    from api import create_app
    outbox = tmp_path / "outbox"
    app = create_app(Settings(
        database_url=db_url, redis_url=None, paypal_base_url=paypal,
        paypal_client_id=CLIENT_ID, paypal_client_secret=CLIENT_SECRET,
        outbox_dir=str(outbox), payout_poll_seconds=0.01, payout_max_polls=20,
        secret_key="browser-test-secret"))
    api = payable(TenantApi(app.test_client(), make_tenant(**POLICY)), BROWSER_MEMBERS)
    served = ServedApp(app)
    driver = start_chromium()
    pages = Pages(driver, served.url)
    try:
        yield driver, pages, api, outbox
    finally:
        report = getattr(request.node, "rep_call", None)
        try:
            if report is not None and report.failed:
                pages.photograph(SCREENS, request.node.name)
        finally:
            driver.quit()
            served.stop()


def _by():
    from selenium.webdriver.common.by import By
    return By


def wait_for(driver, condition, seconds: float = WAIT_SECONDS):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, seconds, ignored_exceptions=[
        StaleElementReferenceException]).until(condition)


def text_of(driver, element_id: str) -> str:
    return driver.find_element(_by().ID, element_id).text


def sign_in(driver, pages: Pages, key: str) -> None:
    field = wait_for(driver, lambda d: d.find_element(_by().ID, "key"))
    field.send_keys(key)
    driver.find_element(_by().ID, "sign-in").click()
    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete")
    pages.seen()


def forged_post(driver, path: str, with_csrf: bool) -> None:
    """Submit a form the page does not offer (as a curious user, or another site, would),
    with or without the session's CSRF token."""
    driver.execute_script("""
        const form = document.createElement('form');
        form.method = 'post'; form.action = arguments[0];
        if (arguments[1]) {
          const token = document.createElement('input');
          token.type = 'hidden'; token.name = 'csrf_token';
          token.value = document.querySelector('input[name=csrf_token]').value;
          form.appendChild(token);
        }
        document.body.appendChild(form); form.submit();""", path, with_csrf)
    wait_for(driver, lambda d: d.find_elements(_by().ID, "error-message"))


def screenshot_for_docs(driver, name: str) -> None:
    folder = os.environ.get("CONSOLE_SCREENS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def browser_fetch(driver, path: str) -> str:
    """GET `path` from inside the page (the session's cookie, as a download would)."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: 'same-origin'})
          .then(r => r.ok ? r.text() : 'HTTP ' + r.status).then(done);""", path)


def test_plan_refuse_the_planner_approve_follow_to_completed_and_download_the_report(console):
    driver, pages, api, outbox = console
    By = _by()
    pages.open("/console/runs")
    assert "/console/sign-in" in driver.current_url  # nothing without signing in
    sign_in(driver, pages, api.tenant.keys["operator"])
    assert text_of(driver, "who-role") == "operator"

    # Plan the payout date.
    driver.execute_script("arguments[0].value = arguments[1]",
                          driver.find_element(By.ID, "payout-date"), PAYOUT)
    driver.find_element(By.ID, "plan").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "plan-hash"))
    pages.seen()
    run_id = int(driver.current_url.rstrip("/").rsplit("/", 1)[1])
    planned = api.run(run_id)
    assert text_of(driver, "run-status") == "planned"
    totals = text_of(driver, "totals")
    assert "paypal" in totals and "amex_mr" in totals and "$1,273.50" in totals
    assert "700" in totals  # Amex points, 100 per dollar
    skipped = text_of(driver, "skipped")
    assert "below_minimum" in skipped and "no_mailing_address" in skipped
    screenshot_for_docs(driver, "plan")

    # The planner holds no approval: no button, and a forged POST is refused.
    assert driver.find_elements(By.ID, "approve") == []
    forged_post(driver, f"/console/runs/{run_id}/approve", with_csrf=True)
    pages.seen()
    assert "cannot do this" in text_of(driver, "error-message")
    # A POST without the CSRF token is refused before anything else is looked at.
    pages.open(f"/console/runs/{run_id}")
    forged_post(driver, f"/console/runs/{run_id}/cancel", with_csrf=False)
    assert "CSRF" in text_of(driver, "error-message")
    assert api.run(run_id)["status"] == "planned"

    # The skipped members, by reason.
    pages.open(f"/console/runs/{run_id}")
    driver.find_element(By.LINK_TEXT, "below_minimum").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "skipped-list"))
    pages.seen()
    assert "small" in text_of(driver, "skipped-list")

    # Sign out; a wrong key opens nothing.
    driver.find_element(By.ID, "sign-out").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "key"))
    sign_in(driver, pages, api.tenant.keys["approver"][:-4] + "AAAA")
    assert "not accepted" in text_of(driver, "sign-in-error")
    assert "/console/sign-in" in driver.current_url

    # The approver approves the plan by its hash.
    sign_in(driver, pages, api.tenant.keys["approver"])
    pages.open(f"/console/runs/{run_id}")
    assert text_of(driver, "plan-hash") == planned["plan_hash"]
    button = driver.find_element(By.ID, "approve")
    assert planned["plan_hash"][:12] in button.text
    button.click()
    wait_for(driver, lambda d: text_of(d, "run-status") == "executing")
    pages.seen()
    assert int(text_of(driver, "progress-done")) < int(text_of(driver, "progress-items"))

    # The partner answers Amex's file; the operator's resume (the clock's watchdog, every
    # minute) collects it, and the open page follows the run to its end by itself.
    answered = unanswered(outbox)
    assert [partner for _, partner, _ in answered] == ["amex"]
    for folder, partner, key in answered:
        respond(folder, partner, key)
    resumed = api.client.post(f"/v1/settlement-runs/{run_id}/resume", headers=api.h("operator"))
    assert resumed.status_code == 202
    wait_for(driver, lambda d: text_of(d, "run-status") == "completed")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#files li a"))
    assert text_of(driver, "progress-done") == text_of(driver, "progress-items") == "4"

    # The report, downloaded in the browser, is the API's.
    ours = browser_fetch(driver, f"/console/runs/{run_id}/report.csv")
    theirs = api.client.get(f"/v1/settlement-runs/{run_id}/report.csv",
                            headers=api.h("operator")).get_data(as_text=True)
    assert ours == theirs and "pp-bob" in ours
    screenshot_for_docs(driver, "run-completed")
    pages.open("/console/runs")
    screenshot_for_docs(driver, "runs")


def test_every_page_of_the_menu_opens_for_an_admin(console):
    driver, pages, api, _ = console
    By = _by()
    pages.open("/console/sign-in")
    sign_in(driver, pages, api.tenant.keys["admin"])
    for link, marker in (("nav-runs", "runs"), ("nav-reports", "reports"),
                         ("nav-members", "members"), ("nav-referrals", "referrals"),
                         ("nav-audit", "audit"), ("nav-queues", "in-process")):
        driver.find_element(By.ID, link).click()
        wait_for(driver, lambda d: d.find_elements(By.ID, marker))
        pages.seen()
    pages.open("/console/members?q=pp-")
    driver.find_element(By.LINK_TEXT, "pp-bob").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "balance"))
    pages.seen()
    assert "$1,234.50" in text_of(driver, "balance")
    # Sorting a table by clicking its header: amounts by their minor units.
    pages.open("/console/members")
    header = driver.find_element(By.CSS_SELECTOR, "#members th")
    header.click()
    first = [row.text.split()[0] for row in driver.find_elements(
        By.CSS_SELECTOR, "#members tbody tr")]
    header.click()
    second = [row.text.split()[0] for row in driver.find_elements(
        By.CSS_SELECTOR, "#members tbody tr")]
    assert first == sorted(first) and second == list(reversed(first))
