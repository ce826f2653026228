"""Fulfilment through every kind of exit, exactly once, with the crediting date honoured
and failures compensated (both databases, against the local Amazon sandbox and files)."""
from __future__ import annotations

import datetime as dt
import secrets

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from settlement.exchanges import zengin
from settlement.exchanges.amazon import IncentivesClient
from settlement.exchanges.codes import unseal
from settlement.exchanges.fulfil import GIFT_MAX_ATTEMPTS, Partners, claim, fulfil_exchanges
from settlement.exchanges.models import Exchange
from settlement.exchanges.service import request_exchange
from settlement.ledger.service import unbalanced_entries
from settlement.models import Tenant
from sandboxes import partners as partner_sandbox
from sandboxes.amazon import serve
from settlement.tenants.service import policy_of
from tests.exchanges.conftest import BANK, NOW, buckets, earn

TODAY = NOW.date()


@pytest.fixture(scope="module")
def amazon():
    with serve() as server:
        yield server


@pytest.fixture
def partners(amazon, tmp_path):
    client = IncentivesClient(amazon.base_url, "Sandb", "sandbox-access-key",
                              "sandbox-secret-key", "us-west-2", timeout=5)
    return Partners(amazon=client, outbox=str(tmp_path), code_key=secrets.token_bytes(32))


def ask(engine, tenant, mid, body, key=None) -> Exchange:
    with Session(engine, expire_on_commit=False) as session:
        policy = policy_of(session.get(Tenant, tenant.id))
        exchange, _ = request_exchange(session, tenant.id, policy, mid, body,
                                       key or secrets.token_hex(4), NOW)
        session.commit()
        return exchange


def state(engine, tenant, exchange_id) -> Exchange:
    with Session(engine, expire_on_commit=False) as session:
        return session.get(Exchange, (tenant.id, exchange_id))


def request_id(tenant, exchange) -> str:
    return f"SandbT{tenant.id}E{exchange.id}"


def test_a_gift_code_is_delivered_sealed_and_the_points_move_to_exchanged(
        engine, points_tenant, partners, amazon):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    exchange = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    done = state(engine, tenant, exchange.id)
    assert done.status == "delivered"
    card = amazon.sandbox.cards[request_id(tenant, exchange)]
    assert card["code"].encode() not in done.code_cipher
    assert unseal(partners.code_key, tenant.id, exchange.id, done.code_cipher) == card["code"]
    assert {k: buckets(engine, tenant, mid)[k] for k in ("available", "reserved",
                                                         "exchanged")} == {
        "available": 4000, "reserved": 0, "exchanged": 1000}


def test_a_lost_answer_is_asked_again_with_the_same_id_and_makes_one_card(
        engine, points_tenant, partners, amazon):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    exchange = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    amazon.sandbox.script(request_id(tenant, exchange), "lost")
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    assert state(engine, tenant, exchange.id).status == "processing"
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    done = state(engine, tenant, exchange.id)
    assert (done.status, done.attempts) == ("delivered", 2)
    assert unseal(partners.code_key, tenant.id, exchange.id, done.code_cipher) == \
        amazon.sandbox.cards[request_id(tenant, exchange)]["code"]
    assert buckets(engine, tenant, mid)["exchanged"] == 1000


def test_a_worker_dying_after_the_claim_leaves_it_processing_and_the_next_job_delivers_once(
        engine, points_tenant, partners, amazon):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    exchange = ask(engine, tenant, mid, {"exit": "amazon", "value": 500})
    with Session(engine) as session:
        claim(session, tenant.id, TODAY)
        session.commit()  # ... and the worker dies before calling Amazon
    assert state(engine, tenant, exchange.id).status == "processing"
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    assert state(engine, tenant, exchange.id).status == "delivered"
    assert buckets(engine, tenant, mid)["exchanged"] == 500


def test_a_refused_gift_card_fails_and_a_compensating_entry_returns_the_points(
        engine, points_tenant, partners, amazon):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    exchange = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    amazon.sandbox.script(request_id(tenant, exchange), "F300")
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    failed = state(engine, tenant, exchange.id)
    assert failed.status == "failed" and "F300" in failed.failure_reason
    assert buckets(engine, tenant, mid)["available"] == 5000
    with Session(engine) as session:
        kinds = session.scalars(select(text("kind")).select_from(text("journal_entries"))
                                .where(text(f"tenant_id = {tenant.id}"))).all()
        assert {"exchange_reserve", "exchange_failed"} <= set(kinds)
        assert unbalanced_entries(session, tenant.id) == []


def test_no_verdict_after_every_attempt_cancels_at_amazon_then_returns_the_points(
        engine, points_tenant, partners, amazon):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    exchange = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    amazon.sandbox.script(request_id(tenant, exchange), *["F400"] * GIFT_MAX_ATTEMPTS)
    for _ in range(GIFT_MAX_ATTEMPTS - 1):
        fulfil_exchanges(engine, tenant.id, partners, TODAY)
        assert state(engine, tenant, exchange.id).status == "processing"
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    assert state(engine, tenant, exchange.id).status == "failed"
    assert request_id(tenant, exchange) not in amazon.sandbox.cards
    assert buckets(engine, tenant, mid)["available"] == 5000


def test_a_bank_transfer_file_parses_back_and_credits_on_its_date_not_before(
        engine, points_tenant, partners, tmp_path):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 10000)
    first = ask(engine, tenant, mid, {"exit": "bank", "value": 3000, "destination": BANK})
    second = ask(engine, tenant, mid, {"exit": "bank", "value": 1500, "destination": {
        **BANK, "bank_code": "0009", "account_type": "current", "account_name": "ｽｽﾞｷ ﾊﾅｺ"}})
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    files = list(tmp_path.rglob("zengin-*.txt"))
    assert len(files) == 1
    raw = files[0].read_bytes()
    assert all(len(line) == zengin.RECORD for line in raw.split(b"\r\n")[:-1])
    header, *data, trailer, end = zengin.parse_file(raw)
    assert (header["kind"], header["type_code"], header["transfer_date"]) == ("1", "21", "1125")
    assert [(d["bank_code"], d["branch_code"], d["account_type"], d["account_number"],
             d["account_name"].rstrip(), int(d["amount"]), int(d["customer_code1"]))
            for d in data] == [
        ("0005", "123", "1", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ", 3000, first.id),
        ("0009", "123", "2", "1234567", "ｽｽﾞｷ ﾊﾅｺ", 1500, second.id)]
    assert (int(trailer["count"]), int(trailer["total"]), end["kind"]) == (2, 4500, "9")
    # Thursday 19 + 3 business days is Wednesday 25 (Monday 23 is a holiday).
    fulfil_exchanges(engine, tenant.id, partners, dt.date(2026, 11, 24))
    assert state(engine, tenant, first.id).status == "processing"
    fulfil_exchanges(engine, tenant.id, partners, dt.date(2026, 11, 25))
    assert state(engine, tenant, first.id).status == "delivered"
    assert buckets(engine, tenant, mid)["exchanged"] == 3000 + 1500 + 330
    assert files[0].read_bytes() == raw  # written once, never rewritten


def test_a_points_partner_answer_file_delivers_the_accepted_and_returns_the_rejected(
        engine, points_tenant, partners, tmp_path):
    tenant = points_tenant()
    good = earn(engine, tenant, "M1", 5000)
    bad = earn(engine, tenant, "M2", 5000)
    ok = ask(engine, tenant, good, {"exit": "paypay", "value": 1000,
                                    "destination": {"account": "pp-1"}})
    no = ask(engine, tenant, bad, {"exit": "paypay", "value": 2000,
                                   "destination": {"account": "pp-0000"}})
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    for folder, partner, key in partner_sandbox.unanswered(tmp_path):
        partner_sandbox.respond(folder, partner, key)
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    assert state(engine, tenant, no.id).status == "failed"
    assert "account closed" in state(engine, tenant, no.id).failure_reason
    assert buckets(engine, tenant, bad)["available"] == 5000
    # PayPay credits the next business day: accepted today, delivered tomorrow.
    assert state(engine, tenant, ok.id).status == "processing"
    fulfil_exchanges(engine, tenant.id, partners, TODAY + dt.timedelta(days=1))
    assert state(engine, tenant, ok.id).status == "delivered"
    assert buckets(engine, tenant, good)["exchanged"] == 1000


def test_the_code_is_shown_on_the_members_own_look_up_only(engine, db_url, points_tenant,
                                                           partners, amazon):
    import base64

    from api import create_app
    from settlement.config import Settings
    key = base64.urlsafe_b64encode(partners.code_key).decode()
    client = create_app(Settings(database_url=db_url, redis_url=None,
                                 gift_code_key=key)).test_client()
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    exchange = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    code = amazon.sandbox.cards[request_id(tenant, exchange)]["code"]
    own = client.get(f"/v1/members/M1/exchanges/{exchange.number}", headers=tenant.auth("operator"))
    assert own.get_json()["gift_code"] == code
    listed = client.get("/v1/members/M1/exchanges", headers=tenant.auth("operator"))
    assert code not in listed.get_data(as_text=True)
    assert listed.get_json()["exchanges"][0]["status"] == "delivered"


def test_a_transfer_the_bank_cannot_make_fails_before_its_date_and_returns_the_points(
        engine, points_tenant, partners, tmp_path):
    tenant = points_tenant()
    good = earn(engine, tenant, "M1", 5000)
    bad = earn(engine, tenant, "M2", 5000)
    paid = ask(engine, tenant, good, {"exit": "bank", "value": 1000, "destination": BANK})
    closed = ask(engine, tenant, bad, {"exit": "bank", "value": 2000, "destination": BANK})
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    partner_sandbox.return_transfers(next(tmp_path.rglob("zengin-*.txt")), {closed.id: "3"},
                                     dt.date(2026, 11, 20))
    fulfil_exchanges(engine, tenant.id, partners, dt.date(2026, 11, 24))
    assert state(engine, tenant, closed.id).status == "failed"
    assert "closed" in state(engine, tenant, closed.id).failure_reason
    assert buckets(engine, tenant, bad)["available"] == 5000
    assert state(engine, tenant, paid.id).status == "processing"
    fulfil_exchanges(engine, tenant.id, partners, dt.date(2026, 11, 25))
    assert state(engine, tenant, paid.id).status == "delivered"


def test_a_card_cancelled_at_amazon_before_its_answer_was_recorded_fails_and_returns_the_points(
        engine, points_tenant, partners, amazon):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    exchange = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    amazon.sandbox.script(request_id(tenant, exchange), "lost")
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    # Someone cancels the card at Amazon; asked again, Amazon answers SUCCESS with the same
    # claim code and cardStatus RefundedToPurchaser (as recorded): not a card to deliver.
    assert partners.amazon.cancel(request_id(tenant, exchange)).status == "SUCCESS"
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    failed = state(engine, tenant, exchange.id)
    assert (failed.status, failed.code_cipher) == ("failed", None)
    assert "cancelled at Amazon" in failed.failure_reason
    assert buckets(engine, tenant, mid)["available"] == 5000


@pytest.mark.parametrize("trouble", ["F100", "F500"])
def test_an_amazon_internal_or_unknown_error_is_asked_again_and_delivers_once(
        engine, points_tenant, partners, amazon, trouble):
    tenant = points_tenant()
    mid = earn(engine, tenant, "M1", 5000)
    exchange = ask(engine, tenant, mid, {"exit": "amazon", "value": 1000})
    amazon.sandbox.script(request_id(tenant, exchange), trouble)
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    assert state(engine, tenant, exchange.id).status == "processing"
    fulfil_exchanges(engine, tenant.id, partners, TODAY)
    assert state(engine, tenant, exchange.id).status == "delivered"
    assert buckets(engine, tenant, mid)["exchanged"] == 1000
