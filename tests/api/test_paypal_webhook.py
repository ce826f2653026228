"""PayPal's webhook: bounded in size and time, signed as PayPal signs (the local sandbox
signs the same way), and even then only a hint, never a source of money: an item event
makes us poll the item's batch, and only what the poll reports moves balances."""
from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from api import create_app
from settlement.config import Settings
from settlement.db import engine_for
from sandboxes.paypal import serve
from settlement.payouts.webhook_signature import Signer
from workers.queue import queue_names

HOOK = "/v1/webhooks/paypal"


@pytest.fixture(scope="module")
def paypal():
    server, base_url = serve()
    yield server
    server.shutdown()


def _settings(db_url: str, paypal, **overrides) -> Settings:
    return Settings(**{"database_url": db_url, "redis_url": None,
                       "paypal_base_url": paypal.base_url, **overrides})


@pytest.fixture
def hook(db_url, paypal):
    return create_app(_settings(db_url, paypal)).test_client()


def _event(paypal, sender_item_id: str, status: str = "SUCCESS") -> dict:
    return {"id": f"WH-{uuid.uuid4().hex[:12]}", "create_time": "2026-11-15T10:00:00Z",
            "event_type": "PAYMENT.PAYOUTS-ITEM.SUCCEEDED",
            "resource": {"transaction_status": status, "payout_item_id": "PI-1",
                         "payout_batch_id": "PB-1",
                         "links": [{"href": f"{paypal.base_url}/v1/payments/payouts-item/PI-1",
                                    "rel": "self", "method": "GET"}],
                         "payout_item": {"sender_item_id": sender_item_id,
                                         "receiver": "a@example.com",
                                         "amount": {"value": "9.99", "currency": "USD"}}}}


def signed(paypal, event: dict) -> tuple[bytes, dict]:
    """The body and headers the sandbox sends for `event`."""
    body = json.dumps(event).encode()
    return body, {"Content-Type": "application/json",
                  **paypal.sandbox.webhook_headers(body, event)}


def test_a_signed_webhook_naming_nothing_of_ours_is_acknowledged_and_changes_nothing(
        hook, paypal, db_url):
    with engine_for(db_url).connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM postings")).scalar_one()
    body, headers = signed(paypal, _event(paypal, "someone-else-1-2"))
    response = hook.post(HOOK, data=body, headers=headers)
    assert response.status_code == 200 and response.get_json()["accepted"] is False
    with engine_for(db_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM postings")).scalar_one() == before


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"event_type": 5}',
                                  b"[" * 1000 + b"]" * 1000])
def test_a_signed_body_that_is_not_a_paypal_event_answers_400(hook, paypal, body):
    headers = {"Content-Type": "application/json",
               **paypal.sandbox.webhook_headers(body, _event(paypal, "x-1-1"))}
    response = hook.post(HOOK, data=body, headers=headers)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def _forgeries(paypal) -> dict[str, tuple[bytes, dict]]:
    event = _event(paypal, "victim-1-2")
    body, headers = signed(paypal, event)
    impostor = Signer.generate()
    webhook_id = paypal.sandbox.config.webhook_id
    return {
        "unsigned": (body, {"Content-Type": "application/json"}),
        "body changed after signing": (body.replace(b"9.99", b"9999.99"), headers),
        "signature of another key": (body, {**headers, **impostor.headers(
            body, webhook_id, event["id"], event["create_time"], headers["PAYPAL-CERT-URL"])}),
        "certificate from elsewhere": (body, {**headers, **impostor.headers(
            body, webhook_id, event["id"], event["create_time"],
            "https://evil.example/cert.pem")}),
        "another algorithm": (body, {**headers, "PAYPAL-AUTH-ALGO": "SHA1withRSA"}),
        "transmission id changed": (body, {**headers, "PAYPAL-TRANSMISSION-ID": "WH-other"}),
    }


@pytest.mark.parametrize("case", ["unsigned", "body changed after signing",
                                  "signature of another key", "certificate from elsewhere",
                                  "another algorithm",
                                  "transmission id changed"])
def test_a_forged_event_answers_401_and_enqueues_nothing(db_url, paypal, redis_url, case):
    from redis import Redis

    prefix = f"t{uuid.uuid4().hex[:8]}:"
    settings = _settings(db_url, paypal, redis_url=redis_url, queue_prefix=prefix)
    client = create_app(settings).test_client()
    body, headers = _forgeries(paypal)[case]
    response = client.post(HOOK, data=body, headers=headers)
    assert response.status_code == 401, response.get_json()
    assert response.mimetype == "application/problem+json"
    redis = Redis.from_url(redis_url)
    assert all(redis.llen(f"rq:queue:{name}") == 0 for name in queue_names(settings))


def test_a_signature_for_another_webhook_id_is_refused(db_url, paypal):
    client = create_app(_settings(db_url, paypal, paypal_webhook_id="WH-OURS")).test_client()
    body, headers = signed(paypal, _event(paypal, "someone-else-1-2"))  # signed for WH-SANDBOX
    assert client.post(HOOK, data=body, headers=headers).status_code == 401


def test_a_body_over_64_kib_is_refused_from_its_content_length_before_it_is_read(hook):
    class Unreadable:
        def read(self, *_args):
            raise AssertionError("the body was read")

    response = hook.post(HOOK, content_type="application/json", environ_overrides={
        "wsgi.input": Unreadable(), "CONTENT_LENGTH": str(64 * 1024 + 1)})
    assert response.status_code == 413


def test_a_body_that_arrives_too_slowly_is_cut_off_with_408(db_url, paypal):
    client = create_app(_settings(db_url, paypal,
                                  webhook_read_timeout_seconds=0.2)).test_client()

    class Trickle:
        """One byte per read, each a little late; bounded, so a missing deadline fails
        the test instead of hanging it."""
        reads = 0

        def read(self, *_args):
            import time
            Trickle.reads += 1
            assert Trickle.reads < 1000, "the read was never cut off"
            time.sleep(0.01)
            return b" "

    response = client.post(HOOK, content_type="application/json", environ_overrides={
        "wsgi.input": Trickle(), "CONTENT_LENGTH": "60000"})
    assert response.status_code == 408
    assert response.mimetype == "application/problem+json"


def test_a_certificate_url_that_failed_is_not_fetched_again_for_each_forgery(paypal):
    from settlement.payouts.webhook_signature import CertificateStore, SignatureRefused

    fetched = []

    class Counting(CertificateStore):
        def _fetch(self, url):
            fetched.append(url)
            return super()._fetch(url)

    store = Counting((paypal.base_url + "/",), timeout=2)
    missing = paypal.base_url + "/no-such-cert.pem"
    for _ in range(3):
        with pytest.raises(SignatureRefused):
            store.get(missing)
    good = paypal.base_url + "/_sandbox/webhook-cert.pem"
    assert store.get(good) is store.get(good)
    assert fetched == [missing, good]
