"""Settlement runs over HTTP, on both databases: plan (operator), approve (another key, the
approver role) bound to the plan's hash, execution in-process against the local sandboxes
(PayPal over HTTP, checks and points partners by files), the run's progress, its items,
and its report (CSV and JSON) tying every paid cent to the commissions it came from.

DESIGN.md "Settlement runs" and "The public contract (v1)".

The whole execution (plan, approve, pay, collect the partners' answers) is done once per
database by the `settled` fixture, which records what the API answered at each step; the
tests then state one rule each about it. Tests that need a run of their own (a refusal, a
cancellation) make a tenant of their own.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import re
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from settlement.config import Settings
from settlement.payouts.csvsafe import FORMULA_PREFIXES, cell
from sandboxes.partners import respond, unanswered
from sandboxes.paypal import serve
from tests.api.conftest import TenantApi

PROBLEM = "application/problem+json"
PAYOUT = "2026-11-15"
CUTOFF = "2026-11-14"  # confirmed_before_date: the day before
BEFORE_CUTOFF = "2026-11-10T18:00:00Z"
CLIENT_ID, CLIENT_SECRET = "runs-api-client", "runs-api-secret"
AMOUNT = re.compile(r"-?\d+\.\d{2}\Z")

METHODS = {"check": {"enabled": True}, "paypal": {"enabled": True},
           "amex_mr": {"enabled": True, "points_per_major_unit": 100, "minimum_points": 500,
                       "eligible_cards": ["gold", "platinum", "green"]},
           "bilt": {"enabled": True, "rates": [
               {"valid_from": "2026-05-15", "tiers": ["blue"], "points_per_major_unit": 50},
               {"valid_from": "2026-05-15", "tiers": ["silver", "gold", "platinum"],
                "points_per_major_unit": 100}]}}
ADDRESS = {"address_line1": "1 Main St", "city": "Savannah", "region": "GA",
           "postal_code": "31401", "country": "US"}
FORMULA_ID = "=CMD()"
FORMULA_NAME = '=HYPERLINK("http://evil.example","click")'
FORMULA_TXN = "=1+1"  # the formula member's transaction ids start with it too
# external id -> (member fields, cash back of each confirmed commission)
MEMBERS = {
    "pp-ann": ({"payout_method": "paypal", "paypal_email": "ann@example.com"},
               ["5.00", "7.00"]),
    "pp-bob": ({"payout_method": "paypal", "paypal_email": "bob@example.com"}, ["8.50"]),
    "pp-fail": ({"payout_method": "paypal", "paypal_email": "x+fail@example.com"}, ["9.00"]),
    FORMULA_ID: ({"payout_method": "check", "name": FORMULA_NAME}, ["15.00"]),
    "chk": ({"payout_method": "check"}, ["12.00", "8.00"]),
    "amex": ({"payout_method": "amex_mr", "amex_account": "MR123456", "amex_card": "gold"},
             ["7.00"]),
    # 50 points per dollar: 7.01 buys 350 points worth 7.00; the cent stays.
    "bilt-blue": ({"payout_method": "bilt", "bilt_account": "B-777", "bilt_tier": "blue"},
                  ["7.01"]),
    # The partner sandbox rejects accounts ending in 0000 (account closed).
    "bilt-closed": ({"payout_method": "bilt", "bilt_account": "B-0000", "bilt_tier": "gold"},
                    ["6.00"]),
    "small": ({"payout_method": "check"}, ["3.00"]),
    "homeless": ({"payout_method": "check", "address_line1": None}, ["9.90"]),
    "pp-nomail": ({"payout_method": "paypal"}, ["8.00"]),
}
PAYPAL_PAID = {"pp-ann": "ann@example.com", "pp-bob": "bob@example.com",
               "pp-fail": "x+fail@example.com"}
SUCCEEDED = {"pp-ann": "12.00", "pp-bob": "8.50", FORMULA_ID: "15.00", "chk": "20.00",
             "amex": "7.00", "bilt-blue": "7.00"}
FAILED = {"pp-fail": "9.00", "bilt-closed": "6.00"}


def assert_problem(response, status: int, code: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["title"]
    if code is not None:
        assert code in [e["code"] for e in body.get("errors") or []], body


def sandbox_get(base_url: str, path: str) -> dict:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(base_url + path, timeout=5) as response:
        return json.loads(response.read())


def paypal_items(base_url: str, slug: str) -> list[dict]:
    """Every item of every batch the sandbox holds for this tenant's runs."""
    batches = [b for b in sandbox_get(base_url, "/_sandbox/batches")["batches"]
               if (b["sender_batch_id"] or "").startswith(f"{slug}-run")]
    return [dict(item, batch=b["sender_batch_id"]) for b in batches for item in b["items"]]


def payable_tenant(api: TenantApi) -> TenantApi:
    """Members of every method and every skip reason, with confirmed balances (10% of sale,
    confirmed before the cut-off of the 2026-11-15 payout date)."""
    api.setup(retailers=("macys",), members=(), rate="10")
    rows = []
    for external_id, (fields, shares) in MEMBERS.items():
        body = {"name": f"Member {external_id}", **ADDRESS, **fields}
        response = api.put_member(external_id, **{k: v for k, v in body.items()
                                                  if v is not None})
        assert response.status_code == 200, response.get_json()
        for n, share in enumerate(shares):
            sale = str(Decimal(share) * 10)
            txn = f"{FORMULA_TXN}-{n}" if external_id == FORMULA_ID else f"T-{external_id}-{n}"
            rows.append(api.row(txn, member=external_id, sale=sale, commission=sale,
                                status="confirmed"))
    report = api.ingest(*rows, as_of=BEFORE_CUTOFF)
    assert report["counts"]["inserted"] == len(rows), report
    return api


@pytest.fixture(scope="module")
def paypal():
    """A PayPal sandbox whose batches complete at their first poll."""
    server, base_url = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, polls_per_step=0)
    yield base_url
    server.shutdown()


def run_settings(db_url: str, paypal_url: str, outbox: Path) -> Settings:
    return Settings(database_url=db_url, redis_url=None, paypal_base_url=paypal_url,
                    paypal_client_id=CLIENT_ID, paypal_client_secret=CLIENT_SECRET,
                    outbox_dir=str(outbox), payout_poll_seconds=0.01, payout_max_polls=20)


@dataclass
class Settled:
    """One run, planned, approved and executed through the API, and what was seen."""
    api: TenantApi
    settings: Settings
    paypal: str
    outbox: Path
    planned: dict
    shown_planned: dict
    approve: object  # the approve response
    after_approval: dict  # GET run once the approve request has answered
    balances_after_approval: dict
    files_after_approval: list
    after_resume_unanswered: dict  # GET run after execute_run with no partner answer yet
    final: dict
    balances: dict
    seen: dict = field(default_factory=dict)

    @property
    def run_id(self) -> int:
        """The tenant's run number, as the API names it."""
        return self.planned["id"]

    @property
    def internal_id(self) -> int:
        """The run's internal id: what jobs take, and the outbox folder's name."""
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from settlement.db import engine_for
        from settlement.models import SettlementRun
        with Session(engine_for(self.settings.database_url)) as session:
            return session.scalar(select(SettlementRun.id).where(
                SettlementRun.tenant_id == self.api.tenant.id,
                SettlementRun.number == self.run_id))

    @property
    def folder(self) -> Path:
        return self.outbox / self.api.tenant.slug / f"run-{self.internal_id}"

    def get(self, path: str, role: str = "operator", **query):
        return self.api.client.get(f"/v1/settlement-runs/{self.run_id}{path}",
                                   query_string=query, headers=self.api.h(role))

    def balances_now(self) -> dict:
        return {m: self.api.balance(m) for m in MEMBERS}

    def execute_again(self):
        from workers.queue import enqueue
        return enqueue("execute_run", self.api.tenant.id, self.internal_id,
                       settings=self.settings)


@pytest.fixture(scope="module")
def _flows():
    return {}


@pytest.fixture
def settled(db_url, make_tenant, paypal, tmp_path_factory, _flows) -> Settled:
    """The run of 2026-11-15, executed once per database (see the module docstring)."""
    if db_url in _flows:
        return _flows[db_url]
    from api import create_app

    outbox = tmp_path_factory.mktemp("outbox")
    settings = run_settings(db_url, paypal, outbox)
    api = payable_tenant(TenantApi(create_app(settings).test_client(),
                                   make_tenant(payouts={"dates": ["02-15", "05-15", "08-15",
                                                                  "11-15"],
                                                        "minimum": "5.01",
                                                        "methods": METHODS})))
    planned = api.plan(PAYOUT)
    assert planned.status_code == 201, planned.get_json()
    planned = planned.get_json()
    shown_planned = api.run(planned["id"])
    approve = api.approve(planned["id"], plan_hash=planned["plan_hash"])
    after_approval = api.run(planned["id"])
    balances_after_approval = {m: api.balance(m) for m in MEMBERS}
    files = sorted(p.name for p in outbox.rglob("*.csv"))
    flow = Settled(api, settings, paypal, outbox, planned, shown_planned, approve,
                   after_approval, balances_after_approval, files, {}, {}, {})
    # Executing again before the partners answered: nothing moves.
    flow.execute_again()
    flow.after_resume_unanswered = api.run(planned["id"])
    flow.seen["balances_after_resume_unanswered"] = flow.balances_now()
    # The partners answer; the next execute_run collects their outcomes.
    answered = unanswered(outbox)
    for folder, partner, key in answered:
        respond(folder, partner, key)
    flow.seen["answered"] = sorted(partner for _, partner, _ in answered)
    # The operator resumes over HTTP (what the clock's watchdog does every minute).
    resumed = api.client.post(f"/v1/settlement-runs/{planned['id']}/resume",
                              headers=api.h("operator"))
    flow.seen["resume"] = (resumed.status_code, resumed.get_json())
    flow.final = api.run(planned["id"])
    flow.balances = flow.balances_now()
    _flows[db_url] = flow
    return flow


def cents(text: str) -> Decimal:
    assert AMOUNT.match(text), text
    return Decimal(text)


# ---------------------------------------------------------------------------------------
# Planning


def test_plan_answers_201_with_the_contract_fields_and_amounts_as_decimal_strings(settled):
    run = settled.planned
    assert isinstance(run["id"], int)
    assert (run["status"], run["payout_date"], run["cutoff_date"]) == ("planned", PAYOUT, CUTOFF)
    assert run["totals"] == {
        "members": 8, "amount": "84.50",
        "by_method": {
            "paypal": {"members": 3, "amount": "29.50", "points": 0},
            "check": {"members": 2, "amount": "35.00", "points": 0},
            "amex_mr": {"members": 1, "amount": "7.00", "points": 700},
            "bilt": {"members": 2, "amount": "13.00", "points": 350 + 600},
        }}
    assert run["skipped"] == {"below_minimum": {"members": 1, "amount": "3.00"},
                              "no_mailing_address": {"members": 1, "amount": "9.90"},
                              "missing_destination": {"members": 1, "amount": "8.00"}}
    assert re.fullmatch(r"[0-9a-f]{64}", run["plan_hash"])
    assert run["progress"]["items"] == 8 and run["progress"]["done"] == 0 \
        and run["progress"]["failed"] == 0
    # GET /v1/settlement-runs/<id> shows the same run.
    assert settled.shown_planned == run


def test_a_date_that_is_not_a_payout_date_answers_422_and_a_second_plan_of_a_date_409(
        api_for, engine):
    api = api_for()
    assert_problem(api.plan("2026-11-16"), 422, "not_a_payout_date")
    assert_problem(api.plan("2026-13-01"), 422)
    assert_problem(api.client.post("/v1/settlement-runs", json={}, headers=api.h("operator")),
                   422)
    first = api.planned(PAYOUT)
    assert_problem(api.plan(PAYOUT), 409, "run_exists")
    assert_problem(api.plan(PAYOUT, role="admin"), 409, "run_exists")
    assert api.run(first["id"]) == first
    with engine.connect() as conn:
        from sqlalchemy import text
        assert conn.execute(text("SELECT count(*) FROM settlement_runs WHERE tenant_id = :t"),
                            {"t": api.tenant.id}).scalar_one() == 1


def test_approve_with_a_plan_hash_other_than_the_plans_answers_409_and_approves_nothing(
        api_for):
    api = api_for()
    run = api.planned(PAYOUT)
    assert_problem(api.approve(run["id"], plan_hash="0" * 64), 409, "plan_hash_mismatch")
    assert_problem(api.approve(run["id"], plan_hash="abc"), 422)
    assert api.run(run["id"])["status"] == "planned"
    approved = api.approve(run["id"], plan_hash=run["plan_hash"])
    assert approved.status_code == 202, approved.get_json()


def test_a_cancelled_plan_frees_its_date_for_a_new_plan(api_for):
    api = api_for()
    run = api.planned(PAYOUT)
    cancelled = api.cancel(run["id"])
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert api.run(run["id"])["status"] == "cancelled"
    assert_problem(api.approve(run["id"]), 409, "not_planned")
    assert_problem(api.cancel(run["id"]), 409, "not_planned")
    again = api.planned(PAYOUT)
    assert again["id"] != run["id"] and again["status"] == "planned"
    # The new plan holds the date as the first one did.
    assert_problem(api.plan(PAYOUT), 409, "run_exists")


# ---------------------------------------------------------------------------------------
# Approval starts execution (in-process without Redis)


def test_approve_answers_202_and_the_run_executes_in_process(settled):
    assert settled.approve.status_code == 202, settled.approve.get_json()
    body = settled.approve.get_json()
    assert body["id"] == settled.run_id and body["approved_by"] != body["planned_by"]
    # PayPal and checks are done; points wait for the partners' answers.
    assert body["status"] == "executing" == settled.after_approval["status"]
    assert body["totals"] == settled.planned["totals"]


def test_approve_answers_202_once_the_approval_is_committed_even_if_in_process_execution_fails(
        db_url, make_tenant, paypal, tmp_path, audit_rows):
    from api import create_app

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the outbox folder should be")
    api = payable_tenant(TenantApi(
        create_app(run_settings(db_url, paypal, blocker)).test_client(),
        make_tenant(payouts={"dates": ["11-15"], "minimum": "5.01", "methods": METHODS})))
    run = api.planned(PAYOUT)
    response = api.approve(run["id"])
    # The approval was made: it is recorded and the run moved on, whatever the answer says.
    assert [r["action"] for r in audit_rows(api.tenant)][-1] == "run.approved"
    assert api.run(run["id"])["status"] == "executing"
    assert response.status_code == 202, response.get_data(as_text=True)


def test_paypal_members_are_paid_once_and_a_failed_receiver_gets_its_amount_back(settled):
    seen = settled.balances_after_approval
    for member in ("pp-ann", "pp-bob"):
        assert seen[member] == {"currency": "USD", "pending": "0.00", "available": "0.00",
                                "reserved": "0.00", "paid": SUCCEEDED[member]}, member
    # x+fail@example.com fails at PayPal: the 9.00 is back in the available balance.
    assert seen["pp-fail"] == {"currency": "USD", "pending": "0.00", "available": "9.00",
                               "reserved": "0.00", "paid": "0.00"}
    items = paypal_items(settled.paypal, settled.api.tenant.slug)
    assert sorted((i["receiver"], i["amount"]["value"], i["transaction_status"])
                  for i in items) == [("ann@example.com", "12.00", "SUCCESS"),
                                      ("bob@example.com", "8.50", "SUCCESS"),
                                      ("x+fail@example.com", "9.00", "FAILED")]


def test_checks_are_written_to_the_outbox_and_paid_at_once_with_payee_names_neutralised(
        settled):
    files = settled.files_after_approval
    checks = [f for f in files if f.startswith("checks-")]
    assert len(checks) == 1 and len([f for f in files if f.startswith("positive-pay-")]) == 1
    with open(settled.folder / checks[0], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted((r["payee_name"], r["amount"]) for r in rows) == [
        ("'" + FORMULA_NAME, "15.00"), ("Member chk", "20.00")]
    assert all(r["payout_date"] == PAYOUT for r in rows)
    for member in (FORMULA_ID, "chk"):
        assert settled.balances_after_approval[member]["paid"] == SUCCEEDED[member]


def test_points_transfer_files_are_written_and_their_amounts_stay_reserved_until_answered(
        settled):
    transfers = [f for f in settled.files_after_approval if "-transfer-" in f]
    assert sorted(f.split("-transfer-")[0] for f in transfers) == ["amex", "bilt"]
    assert not [f for f in settled.files_after_approval if "-response-" in f]
    seen = settled.balances_after_approval
    assert (seen["amex"]["reserved"], seen["amex"]["paid"]) == ("7.00", "0.00")
    assert (seen["bilt-blue"]["reserved"], seen["bilt-blue"]["available"]) == ("7.00", "0.01")
    assert seen["bilt-closed"]["reserved"] == "6.00"
    # Executing again before any answer moves nothing and pays nobody twice.
    assert settled.after_resume_unanswered["status"] == "executing"
    assert settled.seen["balances_after_resume_unanswered"] == seen
    assert settled.seen["answered"] == ["amex", "bilt"]


def test_points_outcomes_are_collected_when_execute_run_is_enqueued_again(settled):
    b = settled.balances
    assert b["amex"] == {"currency": "USD", "pending": "0.00", "available": "0.00",
                         "reserved": "0.00", "paid": "7.00"}
    assert b["bilt-blue"] == {"currency": "USD", "pending": "0.00", "available": "0.01",
                              "reserved": "0.00", "paid": "7.00"}
    # B-0000 is rejected (account closed): the 6.00 returns to the member.
    assert b["bilt-closed"] == {"currency": "USD", "pending": "0.00", "available": "6.00",
                                "reserved": "0.00", "paid": "0.00"}
    # Skipped members keep their balances.
    assert [b[m]["available"] for m in ("small", "homeless", "pp-nomail")] == [
        "3.00", "9.90", "8.00"]
    assert all(v["reserved"] == "0.00" for v in b.values())


def test_a_finished_run_shows_completed_with_failures_and_its_progress(settled):
    run = settled.final
    assert run["status"] == "completed_with_failures"
    assert {k: run["progress"][k] for k in ("items", "done", "failed")} == {
        "items": 8, "done": 6, "failed": 2}
    assert run["totals"] == settled.planned["totals"]
    assert run["skipped"] == settled.planned["skipped"]
    # Every cent planned is either paid or back in a balance.
    paid = sum(cents(settled.balances[m]["paid"]) for m in MEMBERS)
    assert paid == sum(cents(v) for v in SUCCEEDED.values())
    assert paid + sum(cents(v) for v in FAILED.values()) == cents(run["totals"]["amount"])


def test_enqueueing_execute_run_twice_more_pays_no_paypal_member_twice(settled):
    before = settled.balances_now()
    settled.execute_again()
    settled.execute_again()
    items = paypal_items(settled.paypal, settled.api.tenant.slug)
    assert Counter(i["receiver"] for i in items) == Counter(PAYPAL_PAID.values())
    assert len({i["batch"] for i in items}) == 1
    assert settled.balances_now() == before == settled.balances
    assert settled.api.run(settled.run_id) == settled.final


# ---------------------------------------------------------------------------------------
# Items


def all_pages(settled, limit: int, **filters) -> list[dict]:
    out, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit, **filters}
        if cursor:
            query["cursor"] = cursor
        response = settled.get("/items", **query)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        assert len(page["items"]) <= limit
        out.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return out
        assert pages < 50


def test_items_pages_with_a_cursor_and_filters_return_every_item_exactly_once(settled):
    everything = all_pages(settled, limit=500)
    assert len(everything) == 8 == len({i["member"] for i in everything})
    for limit in (1, 3, 7, 8):
        paged = all_pages(settled, limit=limit)
        assert [i["member"] for i in paged] == [i["member"] for i in everything], limit
    assert Counter(i["status"] for i in everything) == {"succeeded": 6, "failed": 2}
    assert sorted(i["amount"] for i in everything if i["status"] == "failed") == ["6.00", "9.00"]
    assert {i["method"]: i["points"] for i in everything if i["method"] == "amex_mr"} == {
        "amex_mr": 700}
    for filters in ({"status": "failed"}, {"status": "succeeded"}, {"method": "paypal"},
                    {"method": "bilt", "status": "failed"}, {"method": "check"}):
        wanted = [i["member"] for i in everything
                  if all(i[k] == v for k, v in filters.items())]
        assert wanted, filters
        for limit in (1, 2):
            assert [i["member"] for i in all_pages(settled, limit=limit, **filters)] == wanted
    assert all_pages(settled, limit=5, status="reserved") == []


def test_an_items_cursor_the_api_did_not_give_answers_400(settled):
    assert_problem(settled.get("/items", cursor="%%not-base64%%"), 400, "invalid_cursor")
    assert_problem(settled.get("/items", cursor=b64("not a number")), 400, "invalid_cursor")
    assert_problem(settled.get("/items", limit=0), 422)
    assert_problem(settled.get("/items", limit=5001), 422)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_an_items_cursor_beyond_64_bits_answers_400_not_500(settled):
    assert_problem(settled.get("/items", cursor=b64("9" * 25)), 400, "invalid_cursor")


# ---------------------------------------------------------------------------------------
# The report


def report_rows(settled, kind: str = "items") -> list[dict]:
    """The report's item rows, or (kind="skipped") its skipped section."""
    response = settled.get("/report.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = csv.DictReader(io.StringIO(response.get_data(as_text=True), newline=""))
    return [r for r in rows if (r["row_kind"] == "skipped") == (kind == "skipped")]


def test_report_lists_every_skipped_member_with_reason_and_amount_in_csv_and_json(settled):
    skipped = [(r["member"], r["skip_reason"], r["skipped_amount"], r["cash_back"])
               for r in report_rows(settled, "skipped")]
    assert sorted(skipped) == [("homeless", "no_mailing_address", "9.90", ""),
                               ("pp-nomail", "missing_destination", "8.00", ""),
                               ("small", "below_minimum", "3.00", "")]
    document = settled.get("/report.json").get_json()
    assert [(s["member"], s["reason"], s["amount"], "") for s in document["skipped"]] == skipped


def test_report_csv_ties_each_item_amount_to_the_cash_back_of_its_rows(settled):
    rows = report_rows(settled)
    by_member = defaultdict(list)
    for row in rows:
        by_member[row["member"]].append(row)
    expected = {("'" + m if m == FORMULA_ID else m): a
                for m, a in {**SUCCEEDED, **FAILED}.items()}
    assert {m: rs[0]["item_amount"] for m, rs in by_member.items()} == expected
    for member, member_rows in by_member.items():
        assert len({r["item_amount"] for r in member_rows}) == 1
        assert sum(cents(r["cash_back"]) for r in member_rows) == \
            cents(member_rows[0]["item_amount"]), member
    # Commission rows name each confirmed line; the cent bilt-blue keeps is an adjustment.
    commissions = Counter(r["member"] for r in rows if r["row_kind"] == "commission")
    assert commissions["pp-ann"] == 2 and commissions["chk"] == 2
    assert [(r["row_kind"], r["cash_back"]) for r in by_member["bilt-blue"]] == [
        ("commission", "7.01"), ("adjustment", "-0.01")]
    statuses = {m: rs[0]["item_status"] for m, rs in by_member.items()}
    assert statuses["pp-fail"] == statuses["bilt-closed"] == "failed"
    assert {r["run_id"] for r in rows} == {str(settled.run_id)}
    assert {r["payout_date"] for r in rows} == {PAYOUT}


def test_report_csv_neutralises_a_member_external_id_starting_with_a_formula_character(
        settled):
    rows = report_rows(settled)
    members = {r["member"] for r in rows}
    assert "'" + FORMULA_ID in members and FORMULA_ID not in members
    assert [r["transaction_id"] for r in rows if r["member"] == "'" + FORMULA_ID] == [
        f"'{FORMULA_TXN}-0"]
    numeric = {"run_id", "item_amount", "points", "cash_back"}
    for row in rows:
        for column, value in row.items():
            if column not in numeric:
                assert not value.startswith(FORMULA_PREFIXES), (column, value)


def test_report_json_matches_report_csv(settled):
    response = settled.get("/report.json")
    assert response.status_code == 200
    report = response.get_json()
    assert (report["run_id"], report["payout_date"], report["cutoff_date"], report["currency"],
            report["status"]) == (settled.run_id, PAYOUT, CUTOFF, "USD",
                                  "completed_with_failures")
    rows = report_rows(settled)
    from_csv = defaultdict(list)
    for row in rows:
        from_csv[row["member"]].append(row)
    assert len(report["items"]) == len(from_csv) == 8
    for item in report["items"]:
        shown = "'" + item["member"] if item["member"] == FORMULA_ID else item["member"]
        csv_rows = from_csv[shown]
        assert (item["amount"], item["status"], item["method"]) == (
            csv_rows[0]["item_amount"], csv_rows[0]["item_status"], csv_rows[0]["method"])
        assert ("" if item["points"] is None else str(item["points"])) == csv_rows[0]["points"]
        # JSON carries text as it is; only the CSV neutralises formula characters.
        assert [(cell(c["transaction_id"]), c["cash_back"]) for c in item["commissions"]] == [
            (r["transaction_id"], r["cash_back"]) for r in csv_rows
            if r["row_kind"] == "commission"]
        confirmed = sum(cents(c["cash_back"]) for c in item["commissions"]
                        if c["status"] == "confirmed")
        assert confirmed + cents(item["adjustment"]) == cents(item["amount"]), item["member"]
    assert {i["member"] for i in report["items"]} == set(SUCCEEDED) | set(FAILED)


def test_resume_over_http_answers_202_and_collects_the_partners_answers(settled):
    status, body = settled.seen["resume"]
    assert status == 202
    assert body["status"] == "completed_with_failures"
    assert {b["method"]: b["status"] for b in body["batches"]} == {
        "paypal": "completed", "check": "completed", "amex_mr": "completed",
        "bilt": "completed"}


def test_a_run_lists_each_batch_with_provider_id_state_item_counts_attempts_and_next_step(
        settled):
    waiting = {b["method"]: b for b in settled.after_resume_unanswered["batches"]}
    assert set(waiting) == {"paypal", "check", "amex_mr", "bilt"}
    paypal = waiting["paypal"]
    assert paypal["status"] == "completed" and paypal["provider_batch_id"]
    assert paypal["counts"] == {"succeeded": 2, "failed": 1} and paypal["attempts"] == 1
    assert paypal["amount"] == "29.50" and paypal["last_error"] is None
    # The partners have not answered: their files' batches wait, polled by file name.
    for method in ("amex_mr", "bilt"):
        assert waiting[method]["status"] == "submitted"
        assert waiting[method]["next"].startswith("poll it by the provider's id")
        assert set(waiting[method]["counts"]) == {"submitted"}


def test_resume_of_a_run_that_is_not_approved_or_executing_answers_409(api_for):
    api = payable_tenant(api_for())
    planned = api.plan(PAYOUT).get_json()
    answer = api.client.post(f"/v1/settlement-runs/{planned['id']}/resume",
                             headers=api.h("operator"))
    assert answer.status_code == 409 and answer.mimetype == PROBLEM
    assert answer.get_json()["errors"][0]["code"] == "not_executing"
    denied = api.client.post(f"/v1/settlement-runs/{planned['id']}/resume",
                             headers=api.h("uploader"))
    assert denied.status_code == 403
