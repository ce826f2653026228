"""The PayPal adapter fed answers PayPal really gave, recorded by public client libraries,
straight over HTTP from a replay server: not through our own sandbox, whose answers are
only as good as our reading of PayPal.

Sources of the recorded bodies (quoted as data):
- the duplicate `sender_batch_id` refusal: plutov/paypal `unit_test.go`
  (TestTypeErrorResponseOne), and the same answer with `location` and an empty top-level
  `links`, as `../shared/specs/paypal/README.md` gives it;
- the batch read back: plutov/paypal `unit_test.go` (TestTypePayoutResponse);
- the token answer: PayPal's documented client-credentials example.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from settlement.payouts.base import SUBMITTED, UNKNOWN, BatchContext, PayoutLine
from settlement.payouts.paypal import PayPalAdapter, original_batch_id

TOKEN = {"scope": "https://uri.paypal.com/services/payments/payouts",
         "access_token": "A21AAFEpH4PsADK7qSS7pSRsgzfENtu-Q1ysgEDVDESseMHBYXVJYE8ovjj68elIDy8nF26AwPhfXTIeWAZHSLIsQkSYz9ifg",
         "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": 31668,
         "nonce": "2020-04-03T15:35:36ZaYZlGvEkV4yVSz8g6bAKFoGSEzuy3CQcz3ljhibkOHg"}

DUPLICATE_PLUTOV = {
    "name": "USER_BUSINESS_ERROR",
    "message": "User business error.",
    "debug_id": "f05063556a338",
    "information_link": "https://developer.paypal.com/docs/api/payments.payouts-batch/#errors",
    "details": [{"field": "SENDER_BATCH_ID",
                 "issue": "Batch with given sender_batch_id already exists",
                 "link": [{"href": "https://api.sandbox.paypal.com/v1/payments/payouts/CR9VS2K4X4846",
                           "rel": "self", "method": "GET"}]}]}

DUPLICATE_SPECS_README = {
    "name": "USER_BUSINESS_ERROR", "message": "User business error.",
    "debug_id": "a5f40f5d5bd3b",
    "information_link": "https://developer.paypal.com/docs/api/payments.payouts-batch/#errors",
    "details": [{"field": "SENDER_BATCH_ID", "location": "body",
                 "issue": "Batch with given sender_batch_id already exists",
                 "link": [{"href": "https://api.sandbox.paypal.com/v1/payments/payouts/Q6K2CE4GQ36MQ",
                           "rel": "self", "method": "GET", "encType": "application/json"}]}],
    "links": []}

PAYOUT_BATCH = {
    "batch_header": {"payout_batch_id": "G4E6WJE6Y4853", "batch_status": "SUCCESS",
                     "time_created": "2017-11-01T23:08:25Z",
                     "time_completed": "2017-11-01T23:08:46Z",
                     "sender_batch_header": {"sender_batch_id": "2017110109",
                                             "email_subject": "Payment"},
                     "amount": {"currency": "USD", "value": "6.37"},
                     "fees": {"currency": "USD", "value": "0.25"}},
    "items": [{"payout_item_id": "9T35G83YA546X", "transaction_id": "4T328230B1D337285",
               "transaction_status": "UNCLAIMED",
               "payout_item_fee": {"currency": "USD", "value": "0.25"},
               "payout_batch_id": "G4E6WJE6Y4853",
               "payout_item": {"recipient_type": "EMAIL",
                               "amount": {"currency": "USD", "value": "6.37"},
                               "note": "Optional note", "receiver": "ppuser@example.com",
                               "sender_item_id": "1"},
               "time_processed": "2017-11-01T23:08:43Z",
               "errors": {"name": "RECEIVER_UNREGISTERED",
                          "message": "Receiver is unregistered",
                          "information_link": "https://developer.paypal.com/docs/api/payments.payouts-batch/#errors",
                          "details": []},
               "links": [{"href": "https://api.sandbox.paypal.com/v1/payments/payouts-item/9T35G83YA546X",
                          "rel": "item", "method": "GET", "encType": "application/json"}]}],
    "links": [{"href": "https://api.sandbox.paypal.com/v1/payments/payouts/G4E6WJE6Y4853?page_size=1000&page=1",
               "rel": "self", "method": "GET", "encType": "application/json"}]}


class Replay:
    """An HTTP server answering each (method, path without query) with a recorded
    (status, body); it logs every request it gets."""

    def __init__(self, answers: dict[tuple[str, str], object]):
        self.answers = answers
        self.requests: list[tuple[str, str]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                replay.requests.append((self.command, self.path))
                found = replay.answers.get((self.command, self.path.split("?")[0]))
                status, body = found(self.path) if callable(found) else (found or (404, {}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def replay():
    servers = []

    def start(answers):
        server = Replay({("POST", "/v1/oauth2/token"): (200, TOKEN), **answers})
        servers.append(server)
        return server, PayPalAdapter(server.url, "id", "secret", timeout=2, backoff=0)
    yield start
    for server in servers:
        server.close()


def ctx(key: str) -> BatchContext:
    return BatchContext(tenant="t", run_id=1, payout_date=dt.date(2026, 11, 15),
                        method="paypal", seq=1, idempotency_key=key, outbox=Path("."))


def line(n: int, reference: str) -> PayoutLine:
    return PayoutLine(item_id=n, reference=reference, member=f"m{n}", amount=637,
                      currency="USD", digits=2, points=None,
                      destination="ppuser@example.com", address=None)


@pytest.mark.parametrize("answer, batch_id", [
    (DUPLICATE_PLUTOV, "CR9VS2K4X4846"), (DUPLICATE_SPECS_README, "Q6K2CE4GQ36MQ")])
def test_the_original_batch_is_read_from_the_duplicate_details_link(answer, batch_id):
    assert original_batch_id(answer) == batch_id


def test_a_duplicate_with_no_link_anywhere_names_no_batch():
    bare = copy.deepcopy(DUPLICATE_SPECS_README)
    del bare["details"][0]["link"]
    assert original_batch_id(bare) is None


def test_a_reused_sender_batch_id_adopts_the_linked_batch_read_from_our_own_base_url(replay):
    server, adapter = replay({
        ("POST", "/v1/payments/payouts"): (400, DUPLICATE_PLUTOV),
        ("GET", "/v1/payments/payouts/CR9VS2K4X4846"): (200, PAYOUT_BATCH)})
    result = adapter.submit(ctx("2017110109"), [line(1, "1")])
    assert (result.state, result.provider_batch_id) == (SUBMITTED, "CR9VS2K4X4846")
    # The token never goes to the host named in the answer: the batch is read from ours.
    assert server.requests[-1] == ("GET", "/v1/payments/payouts/CR9VS2K4X4846"
                                          "?fields=batch_header")


def test_a_linked_batch_of_another_sender_batch_id_is_not_adopted(replay):
    _, adapter = replay({
        ("POST", "/v1/payments/payouts"): (400, DUPLICATE_PLUTOV),
        ("GET", "/v1/payments/payouts/CR9VS2K4X4846"): (200, PAYOUT_BATCH)})
    result = adapter.find(ctx("another-key"), [line(1, "1")])
    assert result.state == UNKNOWN and "2017110109" in result.error


def test_the_recorded_batch_is_polled_to_its_unclaimed_item(replay):
    server, adapter = replay({("GET", "/v1/payments/payouts/G4E6WJE6Y4853"):
                              (200, PAYOUT_BATCH)})
    result = adapter.poll(ctx("2017110109"), "G4E6WJE6Y4853", [line(7, "1")])
    [outcome] = result.outcomes
    assert (outcome.item_id, outcome.status, outcome.provider_item_id) == (
        7, "unclaimed", "9T35G83YA546X")
    assert result.error is None and not result.done  # UNCLAIMED is not final
    pages = [path for method, path in server.requests if "page=" in path]
    assert len(pages) == 1


def test_pages_are_read_up_to_total_pages_and_no_further(replay):
    """Three lines, page size 1: PayPal says total_pages 3; the adapter reads pages 1..3."""
    def page(path):
        number = int(path.split("page=")[1].split("&")[0]) if "page=" in path else 1
        body = copy.deepcopy(PAYOUT_BATCH)
        body["items"][0]["payout_item"]["sender_item_id"] = str(number)
        body["items"][0]["payout_item_id"] = f"ITEM{number}"
        body["items"][0]["transaction_status"] = "SUCCESS"
        body["items"][0]["errors"] = None
        body["total_items"], body["total_pages"] = 3, 3
        return 200, body

    server, adapter = replay({("GET", "/v1/payments/payouts/G4E6WJE6Y4853"): page})
    adapter.page_size = 1
    lines = [line(n, str(n)) for n in (1, 2, 3)]
    result = adapter.poll(ctx("2017110109"), "G4E6WJE6Y4853", lines)
    assert sorted(o.provider_item_id for o in result.outcomes) == ["ITEM1", "ITEM2", "ITEM3"]
    assert result.done and result.error is None
    pages = [path for method, path in server.requests if "page=" in path]
    assert len(pages) == 3


def test_a_batch_that_keeps_answering_pages_is_read_no_further_than_its_lines_fill(replay):
    """Without total_pages, a server that answers every page with items is read for the
    pages our lines fill, never up to 15,000 requests."""
    def page(path):
        number = int(path.split("page=")[1].split("&")[0]) if "page=" in path else 1
        body = copy.deepcopy(PAYOUT_BATCH)
        body["items"][0]["payout_item"]["sender_item_id"] = f"x{number}"
        return 200, body

    server, adapter = replay({("GET", "/v1/payments/payouts/G4E6WJE6Y4853"): page})
    adapter.page_size = 1
    result = adapter.poll(ctx("2017110109"), "G4E6WJE6Y4853", [line(1, "1"), line(2, "2")])
    pages = [path for method, path in server.requests if "page=" in path]
    assert len(pages) == 2
    assert result.error and not result.done
