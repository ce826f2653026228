"""PayPal's webhook is a hint, never a source of money: an item event makes us poll the
item's batch, and only what the poll reports moves balances."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from settlement.db import engine_for


def _event(sender_item_id: str, status: str = "SUCCESS") -> bytes:
    return json.dumps({"id": "WH-1", "event_type": "PAYMENT.PAYOUTS-ITEM.SUCCEEDED",
                       "resource": {"transaction_status": status, "payout_item_id": "PI-1",
                                    "payout_batch_id": "PB-1",
                                    "payout_item": {"sender_item_id": sender_item_id,
                                                    "receiver": "a@example.com",
                                                    "amount": {"value": "9.99",
                                                               "currency": "USD"}}}}).encode()


def test_a_webhook_naming_nothing_of_ours_is_acknowledged_and_changes_nothing(client, db_url):
    with engine_for(db_url).connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM postings")).scalar_one()
    response = client.post("/v1/webhooks/paypal", data=_event("someone-else-1-2"),
                           content_type="application/json")
    assert response.status_code == 200 and response.get_json()["accepted"] is False
    with engine_for(db_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM postings")).scalar_one() == before


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"event_type": 5}'])
def test_a_body_that_is_not_a_paypal_event_answers_400(client, body):
    response = client.post("/v1/webhooks/paypal", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
