"""PayPal's webhook refuses a captured event sent again: a transmission time outside 5
minutes of now (401), a transmission id received before (409); either way nothing is
queued. The events are signed by the local sandbox exactly as PayPal signs them, so the
signature itself is good: only the replay rules refuse them."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from api import create_app
from api.routes.webhooks import TRANSMISSION_WINDOW
from tests.api.test_paypal_webhook import HOOK, _event, _settings
# The executed run of tests/api/test_runs_api.py, with its fixtures (its `paypal` is the
# base URL of the sandbox its batches went to).
from tests.api.test_runs_api import _flows, paypal, paypal_items, settled  # noqa: F401
from workers.queue import queue_names


@pytest.fixture(scope="module")
def signer():
    """A PayPal sandbox that signs the events we send, as PayPal does."""
    from sandboxes.paypal import serve
    server, _base_url = serve()
    yield server
    server.shutdown()


@pytest.fixture
def queued(db_url, signer, redis_url):
    """A client whose jobs go to a Redis queue of its own, and a count of what is there."""
    from redis import Redis
    settings = _settings(db_url, signer, redis_url=redis_url,
                         queue_prefix=f"t{uuid.uuid4().hex[:8]}-")
    redis = Redis.from_url(redis_url)

    def jobs() -> int:
        return sum(redis.llen(f"rq:queue:{name}") for name in queue_names(settings))
    return create_app(settings).test_client(), jobs


def _sent(signer, reference: str, **pinned) -> tuple[bytes, dict]:
    event = _event(signer, reference)
    body = json.dumps(event).encode()
    return body, {"Content-Type": "application/json",
                  **signer.sandbox.webhook_headers(body, event, **pinned)}


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_transmission_sent_again_is_refused_with_409_and_queues_nothing(queued, signer):
    client, jobs = queued
    body, headers = _sent(signer, "nobody-1-2")
    first = client.post(HOOK, data=body, headers=headers)
    assert first.status_code == 200, first.get_json()
    again = client.post(HOOK, data=body, headers=headers)
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    assert headers["PAYPAL-TRANSMISSION-ID"] in again.get_json()["detail"]
    assert jobs() == 0


@pytest.mark.parametrize("offset", [-TRANSMISSION_WINDOW - dt.timedelta(minutes=1),
                                    TRANSMISSION_WINDOW + dt.timedelta(minutes=1),
                                    -dt.timedelta(days=400)],
                         ids=["six minutes old", "six minutes ahead", "a year old"])
def test_a_transmission_time_outside_five_minutes_of_now_is_refused_with_401(queued, signer,
                                                                            offset):
    client, jobs = queued
    sent = _iso(dt.datetime.now(dt.timezone.utc) + offset)
    body, headers = _sent(signer, "nobody-1-2", transmission_time=sent)
    response = client.post(HOOK, data=body, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert "PAYPAL-TRANSMISSION-TIME" in response.get_json()["detail"]
    assert jobs() == 0


@pytest.mark.parametrize("sent", ["yesterday", "2026-11-15T10:00:00", "1700000000"])
def test_a_transmission_time_that_is_not_an_iso_time_with_its_zone_is_refused(queued, signer,
                                                                             sent):
    client, jobs = queued
    body, headers = _sent(signer, "nobody-1-2", transmission_time=sent)
    response = client.post(HOOK, data=body, headers=headers)
    assert response.status_code == 401
    assert "ISO 8601" in response.get_json()["detail"]
    assert jobs() == 0


def test_a_transmission_within_the_window_is_accepted_once_each(queued, signer):
    """Two transmissions of the same event (PayPal's re-sends have ids of their own) are
    both taken; the window's edge minus a little is still inside it."""
    client, _jobs = queued
    almost = _iso(dt.datetime.now(dt.timezone.utc) - TRANSMISSION_WINDOW
                  + dt.timedelta(seconds=30))
    for pinned in ({}, {"transmission_time": almost}):
        body, headers = _sent(signer, "nobody-1-2", **pinned)
        assert client.post(HOOK, data=body, headers=headers).status_code == 200


def test_a_forged_transmission_does_not_use_up_its_id(queued, signer):
    """Ids are remembered only once the signature holds: a forger sending a genuine
    event's id first cannot get the genuine event refused as a replay."""
    client, _jobs = queued
    body, headers = _sent(signer, "nobody-1-2")
    forged = client.post(HOOK, data=body + b" ", headers=headers)
    assert forged.status_code == 401
    assert client.post(HOOK, data=body, headers=headers).status_code == 200


def test_an_event_for_our_batch_queues_its_poll_once_however_often_it_is_replayed(
        settled, queued, signer):
    """An executed run's PayPal item (tests/api/test_runs_api.py's run): its event queues
    one poll of the batch (found, on PostgreSQL, through settle_paypal_item_batch by the
    web's role, which sees no tenant without a key); the same transmission again queues
    nothing more."""
    client, jobs = queued
    reference = paypal_items(settled.paypal, settled.api.tenant.slug)[0]["sender_item_id"]
    body, headers = _sent(signer, reference)
    first = client.post(HOOK, data=body, headers=headers)
    assert first.status_code == 202, first.get_json()
    assert jobs() == 1
    for _ in range(3):
        assert client.post(HOOK, data=body, headers=headers).status_code == 409
    assert jobs() == 1
