"""The local PayPal Payouts sandbox, spoken to over real HTTP (urllib) as the adapter will.

Every PayPal answer the sandbox gives is also checked against the response schema that
PayPal's OpenAPI document declares for it.
"""
from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from decimal import Decimal

import pytest

from sandboxes.paypal import load_document, serve

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
PAYOUTS = "/v1/payments/payouts"

DOC = load_document()
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def assert_matches(path: str, method: str, status: int, body: dict) -> None:
    """`body` conforms to the document's response schema for that operation and status."""
    ref = DOC.response_schema_ref(path, method, status)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in DOC.validator(ref).iter_errors(body)]
    assert not errors, errors


class Client:
    """A minimal PayPal REST client over urllib: token on demand, JSON in and out."""

    def __init__(self, base_url: str, client_id: str = CLIENT_ID,
                 client_secret: str = CLIENT_SECRET, timeout: float = 5.0):
        self.base_url = base_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = timeout
        self.token: str | None = None

    def raw(self, method: str, url: str, data: bytes | None = None,
            headers: dict | None = None, timeout: float | None = None) -> tuple[int, dict]:
        if not url.startswith("http"):
            url = self.base_url + url
        req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
        try:
            with _OPENER.open(req, timeout=timeout or self.timeout) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read() or b"{}")

    def fetch_token(self, client_id: str | None = None, client_secret: str | None = None
                    ) -> tuple[int, dict]:
        pair = f"{client_id or self.client_id}:{client_secret or self.client_secret}"
        return self.raw("POST", "/v1/oauth2/token",
                        data=b"grant_type=client_credentials",
                        headers={"Authorization": "Basic " + base64.b64encode(
                            pair.encode()).decode(),
                                 "Content-Type": "application/x-www-form-urlencoded"})

    def call(self, method: str, url: str, body=None, headers: dict | None = None,
             timeout: float | None = None) -> tuple[int, dict]:
        if self.token is None:
            status, answer = self.fetch_token()
            assert status == 200, answer
            self.token = answer["access_token"]
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        return self.raw(method, url, data=data, headers=all_headers, timeout=timeout)

    def create(self, body, **kw) -> tuple[int, dict]:
        return self.call("POST", PAYOUTS, body, **kw)

    def get_batch(self, batch_id: str, **query) -> tuple[int, dict]:
        suffix = ("?" + urllib.parse.urlencode(query)) if query else ""
        return self.call("GET", f"{PAYOUTS}/{batch_id}{suffix}")

    def control(self, method: str, path: str, body=None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        status, answer = self.raw(method, "/_sandbox" + path, data=data,
                                  headers={"Content-Type": "application/json"})
        assert status == 200, answer
        return answer

    def batches(self) -> list[dict]:
        return self.control("GET", "/batches")["batches"]


@pytest.fixture(scope="module")
def sandbox():
    server, base_url = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                             polls_per_step=1, timeout_after_accept_seconds=2.0)
    yield server, base_url
    server.shutdown()


@pytest.fixture
def client(sandbox):
    server, base_url = sandbox
    server.sandbox.reset()
    server.sandbox.config.polls_per_step = 1
    server.sandbox.config.webhook_url = None
    return Client(base_url)


def batch(*receivers: str, amount: str = "10.00", currency: str = "USD",
          sender_batch_id: str | None = None) -> dict:
    return {
        "sender_batch_header": {"sender_batch_id": sender_batch_id or f"run-{uuid.uuid4().hex}",
                                "recipient_type": "EMAIL",
                                "email_subject": "Your cash back"},
        "items": [{"amount": {"value": amount, "currency": currency}, "receiver": receiver,
                   "sender_item_id": f"item-{n}", "note": "Cash back"}
                  for n, receiver in enumerate(receivers)],
    }


def poll_until_done(client: Client, batch_id: str, limit: int = 10) -> dict:
    for _ in range(limit):
        status, answer = client.get_batch(batch_id)
        assert status == 200, answer
        if answer["batch_header"]["batch_status"] not in ("PENDING", "PROCESSING"):
            return answer
    raise AssertionError(f"batch {batch_id} still processing after {limit} polls")


# --- authentication -------------------------------------------------------------------


def test_client_credentials_grant_issues_a_bearer_token(client):
    status, answer = client.fetch_token()
    assert status == 200
    assert answer["token_type"] == "Bearer"
    assert answer["access_token"] and answer["expires_in"] > 0


def test_wrong_client_credentials_are_refused_with_invalid_client(client):
    status, answer = client.fetch_token(client_secret="not-the-secret")
    assert (status, answer["error"]) == (401, "invalid_client")
    status, answer = client.raw("POST", "/v1/oauth2/token",
                                data=b"grant_type=client_credentials",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, answer["error"]) == (401, "invalid_client")


def test_payout_calls_without_a_valid_bearer_token_are_refused(client):
    client.token = "A21AA-made-up"
    status, answer = client.create(batch("a@example.com"))
    assert (status, answer["name"]) == (401, "AUTHENTICATION_FAILURE")
    assert client.batches() == []


# --- create ---------------------------------------------------------------------------


def test_the_documents_example_batch_is_accepted_pending_with_a_link(client):
    body = DOC.request_example(PAYOUTS, "post")
    body["sender_batch_header"]["sender_batch_id"] = f"example-{uuid.uuid4().hex}"
    status, answer = client.create(body)
    assert status == 201, answer
    assert_matches(PAYOUTS, "post", 201, answer)
    header = answer["batch_header"]
    assert header["batch_status"] == "PENDING"
    assert header["sender_batch_header"]["sender_batch_id"] == \
        body["sender_batch_header"]["sender_batch_id"]
    assert answer["links"][0]["href"] == f"{client.base_url}{PAYOUTS}/{header['payout_batch_id']}"
    [recorded] = client.batches()
    assert recorded["payout_batch_id"] == header["payout_batch_id"]
    assert [i["recipient_type"] for i in recorded["items"]] == ["EMAIL", "PHONE", "PAYPAL_ID"]


def _without_header(body):
    del body["sender_batch_header"]


def _exponent_amount(body):
    body["items"][0]["amount"]["value"] = "1e3"


def _bad_currency(body):
    body["items"][0]["amount"]["currency"] = "XYZ"


def _float_amount(body):
    body["items"][0]["amount"]["value"] = 10.5


def _too_many_decimals(body):
    body["items"][0]["amount"]["value"] = "10.001"


def _receiver_not_an_email(body):
    body["items"][1]["receiver"] = "not-an-email"


def _unknown_recipient_type(body):
    body["items"][0]["recipient_type"] = "FAX"


def _no_items(body):
    body["items"] = []


@pytest.mark.parametrize("spoil, field", [
    (_without_header, "sender_batch_header"),
    (_exponent_amount, "items[0].amount.value"),
    (_bad_currency, "items[0].amount.currency"),
    (_float_amount, "items[0].amount.value"),
    (_too_many_decimals, "items[0].amount.value"),
    (_receiver_not_an_email, "items[1].receiver"),
    (_unknown_recipient_type, "items[0].recipient_type"),
    (_no_items, "items"),
], ids=lambda v: getattr(v, "__name__", v))
def test_an_invalid_body_refuses_the_whole_batch_with_validation_error_naming_the_field(
        client, spoil, field):
    body = batch("a@example.com", "b@example.com", "c@example.com")
    spoil(body)
    status, answer = client.create(body)
    assert (status, answer["name"]) == (400, "VALIDATION_ERROR"), answer
    assert_matches(PAYOUTS, "post", 400, answer)
    assert field in [d["field"] for d in answer["details"]], answer["details"]
    assert all(d["location"] == "body" and d["issue"] for d in answer["details"])
    assert answer["debug_id"] and answer["information_link"]
    assert client.batches() == []


def test_a_body_that_is_not_json_is_malformed_request(client):
    status, answer = client.create(b'{"sender_batch_header": ')
    assert (status, answer["name"]) == (400, "MALFORMED_REQUEST")


def test_more_than_15000_items_are_refused_with_validation_error(client):
    body = batch(*(f"member{n}@example.com" for n in range(15_001)), amount="1.00")
    status, answer = client.create(body, timeout=20)
    assert (status, answer["name"]) == (400, "VALIDATION_ERROR")
    assert [d["field"] for d in answer["details"]] == ["items"]
    assert client.batches() == []


def test_a_sender_batch_id_reused_within_30_days_is_refused_as_paypal_refuses_it(client):
    """PayPal's shape (specs/paypal/README.md): the link to the original batch is inside
    the SENDER_BATCH_ID detail, the top-level `links` is empty."""
    first = batch("a@example.com", sender_batch_id="run-2026-01-01-1")
    status, created = client.create(first)
    assert status == 201
    status, answer = client.create(batch("other@example.com", sender_batch_id="run-2026-01-01-1"))
    assert (status, answer["name"]) == (400, "USER_BUSINESS_ERROR")
    assert_matches(PAYOUTS, "post", 400, answer)
    assert [(d["field"], d["location"], d["issue"]) for d in answer["details"]] == [
        ("SENDER_BATCH_ID", "body", "Batch with given sender_batch_id already exists")]
    assert answer["links"] == []
    [link] = answer["details"][0]["link"]
    assert (link["rel"], link["encType"]) == ("self", "application/json")
    assert link["method"] == "GET"
    batch_id = created["batch_header"]["payout_batch_id"]
    assert link["href"] == f"{client.base_url}{PAYOUTS}/{batch_id}"
    status, found = client.call("GET", link["href"])
    assert status == 200
    assert found["batch_header"]["payout_batch_id"] == batch_id
    assert len(client.batches()) == 1


def test_items_are_not_deduplicated_by_sender_item_id(client):
    body = batch("a@example.com", "a@example.com")
    body["items"][1]["sender_item_id"] = body["items"][0]["sender_item_id"]
    status, _ = client.create(body)
    assert status == 201
    assert len(client.batches()[0]["items"]) == 2


def test_a_repeated_paypal_request_id_replays_the_first_answer(client):
    headers = {"PayPal-Request-Id": f"req-{uuid.uuid4().hex}"}
    status, first = client.create(batch("a@example.com"), headers=headers)
    assert status == 201
    status, again = client.create(batch("a@example.com"), headers=headers)
    assert (status, again) == (201, first)
    assert len(client.batches()) == 1


# --- progress and outcomes ------------------------------------------------------------


def test_item_outcomes_follow_the_receiver_suffix_once_polling_completes_the_batch(client):
    receivers = {
        "paid@example.com": "SUCCESS",
        "alice+fail@example.com": "FAILED",
        "bob+unclaimed@example.com": "UNCLAIMED",
        "carol+returned@example.com": "RETURNED",
        "dave+onhold@example.com": "ONHOLD",
        "erin+blocked@example.com": "BLOCKED",
        "frank+pending@example.com": "PENDING",
    }
    status, created = client.create(batch(*receivers, amount="12.34"))
    assert status == 201
    batch_id = created["batch_header"]["payout_batch_id"]

    status, first = client.get_batch(batch_id)
    assert first["batch_header"]["batch_status"] == "PROCESSING"
    assert {i["transaction_status"] for i in first["items"]} == {"PENDING"}

    status, done = client.get_batch(batch_id)
    assert status == 200
    assert_matches(f"{PAYOUTS}/{{id}}", "get", 200, done)
    header = done["batch_header"]
    assert header["batch_status"] == "SUCCESS"
    assert header["amount"] == {"currency": "USD", "value": str(Decimal("12.34") * 7)}
    got = {i["payout_item"]["receiver"]: i["transaction_status"] for i in done["items"]}
    assert got == receivers
    by_status = {i["transaction_status"]: i for i in done["items"]}
    assert by_status["FAILED"]["errors"]["name"] == "RECEIVER_UNREGISTERED"
    assert "transaction_id" in by_status["SUCCESS"]
    assert by_status["SUCCESS"]["payout_item"]["amount"] == {"value": "12.34",
                                                              "currency": "USD"}

    item_id = by_status["UNCLAIMED"]["payout_item_id"]
    status, item = client.call("GET", f"/v1/payments/payouts-item/{item_id}")
    assert status == 200
    assert_matches("/v1/payments/payouts-item/{payout_item_id}", "get", 200, item)
    assert (item["transaction_status"], item["payout_batch_id"]) == ("UNCLAIMED", batch_id)


def test_batch_items_are_paged_with_totals_when_asked(client):
    status, created = client.create(batch(*(f"m{n}@example.com" for n in range(5))))
    batch_id = created["batch_header"]["payout_batch_id"]
    status, page = client.get_batch(batch_id, page=3, page_size=2, total_required="true")
    assert status == 200
    assert_matches(f"{PAYOUTS}/{{id}}", "get", 200, page)
    assert (page["total_items"], page["total_pages"], len(page["items"])) == (5, 3, 1)
    assert page["items"][0]["payout_item"]["receiver"] == "m4@example.com"
    assert {link["rel"] for link in page["links"]} >= {"self", "prev", "first", "last"}
    status, answer = client.get_batch(batch_id, page_size=0)
    assert (status, answer["name"]) == (400, "VALIDATION_ERROR")
    assert answer["details"][0]["location"] == "query"


def test_an_unknown_batch_is_404(client):
    status, answer = client.get_batch("NOSUCHBATCH00")
    assert (status, answer["name"]) == (404, "INVALID_RESOURCE_ID")
    assert_matches(f"{PAYOUTS}/{{id}}", "get", 404, answer)


def test_unclaimed_items_turn_returned_30_days_later_and_the_sender_batch_id_is_free_again(
        client):
    status, created = client.create(batch("ok@example.com", "gone+unclaimed@example.com",
                                          sender_batch_id="run-monthly"))
    batch_id = created["batch_header"]["payout_batch_id"]
    done = poll_until_done(client, batch_id)
    assert [i["transaction_status"] for i in done["items"]] == ["SUCCESS", "UNCLAIMED"]

    client.control("POST", "/advance", {"days": 29})
    assert [i["transaction_status"] for i in client.batches()[0]["items"]] == [
        "SUCCESS", "UNCLAIMED"]
    client.control("POST", "/advance", {"days": 2})
    assert [i["transaction_status"] for i in client.batches()[0]["items"]] == [
        "SUCCESS", "RETURNED"]

    status, answer = client.get_batch(batch_id)  # the old token has expired by now
    assert (status, answer["name"]) == (401, "AUTHENTICATION_FAILURE")
    client.token = None
    status, answer = client.get_batch(batch_id)
    assert [i["transaction_status"] for i in answer["items"]] == ["SUCCESS", "RETURNED"]

    status, _ = client.create(batch("ok@example.com", sender_batch_id="run-monthly"))
    assert status == 201
    assert len(client.batches()) == 2


def test_an_unclaimed_item_can_be_cancelled_and_is_returned(client):
    status, created = client.create(batch("x+unclaimed@example.com"))
    done = poll_until_done(client, created["batch_header"]["payout_batch_id"])
    item_id = done["items"][0]["payout_item_id"]
    status, item = client.call("POST", f"/v1/payments/payouts-item/{item_id}/cancel")
    assert (status, item["transaction_status"]) == (200, "RETURNED")
    status, answer = client.call("POST", f"/v1/payments/payouts-item/{item_id}/cancel")
    assert status == 400


def test_polls_per_step_zero_completes_a_batch_at_its_first_poll(sandbox, client):
    client.control("POST", "/config", {"polls_per_step": 0})
    status, created = client.create(batch("a@example.com"))
    status, answer = client.get_batch(created["batch_header"]["payout_batch_id"])
    assert answer["batch_header"]["batch_status"] == "SUCCESS"


# --- fault injection ------------------------------------------------------------------


def test_http_500_before_accept_records_nothing_and_a_retry_with_the_same_id_pays_once(client):
    client.control("POST", "/faults", {"next": [{"kind": "http_500", "count": 1}]})
    body = batch("a@example.com", sender_batch_id="run-500")
    status, answer = client.create(body)
    assert (status, answer["name"]) == (500, "INTERNAL_SERVER_ERROR")
    assert client.batches() == []
    status, answer = client.create(body)
    assert status == 201
    status, answer = client.create(body)
    assert (status, answer["name"]) == (400, "USER_BUSINESS_ERROR")
    assert [len(b["items"]) for b in client.batches()] == [1]


def test_http_503_answers_service_unavailable_before_recording(client):
    client.control("POST", "/faults", {"next": [{"kind": "http_503"}]})
    status, answer = client.create(batch("a@example.com"))
    assert (status, answer["name"]) == (503, "SERVICE_UNAVAILABLE")
    assert client.batches() == []


def test_http_500_after_accept_records_the_batch_so_the_retry_finds_it_by_the_link(client):
    client.control("POST", "/faults", {"next": [{"kind": "http_500_after_accept"}]})
    body = batch("a@example.com", sender_batch_id="run-500-after")
    status, _ = client.create(body)
    assert status == 500
    status, answer = client.create(body)
    assert (status, answer["name"]) == (400, "USER_BUSINESS_ERROR")
    [recorded] = client.batches()
    assert answer["details"][0]["link"][0]["href"].endswith(recorded["payout_batch_id"])


def test_timeout_after_accept_leaves_a_recorded_batch_that_the_duplicate_link_finds(client):
    client.control("POST", "/faults", {"next": [{"kind": "timeout_after_accept",
                                                 "seconds": 2}]})
    body = batch("a@example.com", "b@example.com", sender_batch_id="run-timeout")
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        client.create(body, timeout=0.3)
    [recorded] = client.batches()
    status, answer = client.create(body)
    assert (status, answer["name"]) == (400, "USER_BUSINESS_ERROR")
    status, found = client.call("GET", answer["details"][0]["link"][0]["href"])
    assert status == 200
    assert found["batch_header"]["payout_batch_id"] == recorded["payout_batch_id"]
    assert len(found["items"]) == 2


def test_drop_connection_answers_nothing_and_records_nothing(client):
    client.control("POST", "/faults", {"next": [{"kind": "drop_connection"}]})
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        client.create(batch("a@example.com"))
    assert client.batches() == []
    status, _ = client.create(batch("a@example.com"))
    assert status == 201


def test_drop_connection_after_accept_records_the_batch(client):
    client.control("POST", "/faults", {"next": [{"kind": "drop_connection_after_accept"}]})
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        client.create(batch("a@example.com"))
    assert len(client.batches()) == 1


def test_deny_batch_answers_denied_and_pays_no_item(client):
    client.control("POST", "/faults", {"next": [{"kind": "deny_batch"}]})
    status, created = client.create(batch("a@example.com", "b@example.com"))
    assert (status, created["batch_header"]["batch_status"]) == (201, "DENIED")
    status, answer = client.get_batch(created["batch_header"]["payout_batch_id"])
    assert answer["batch_header"]["batch_status"] == "DENIED"
    assert {i["transaction_status"] for i in answer["items"]} == {"FAILED"}


def test_faults_can_target_reads_and_are_consumed_in_order(client):
    status, created = client.create(batch("a@example.com"))
    batch_id = created["batch_header"]["payout_batch_id"]
    client.control("POST", "/faults", {"next": [{"kind": "http_503", "on": "get"},
                                                {"kind": "http_500", "on": "get"}]})
    assert client.get_batch(batch_id)[0] == 503
    assert client.get_batch(batch_id)[0] == 500
    assert client.get_batch(batch_id)[0] == 200
    faults = client.control("GET", "/faults")
    assert faults["pending"] == []
    assert [f["kind"] for f in faults["applied"]] == ["http_503", "http_500"]


def test_an_unknown_fault_kind_is_refused(client):
    status, answer = client.raw("POST", "/_sandbox/faults",
                                data=json.dumps({"next": [{"kind": "meteor"}]}).encode(),
                                headers={"Content-Type": "application/json"})
    assert status == 400


# --- webhooks -------------------------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_events_are_posted_when_items_reach_their_outcome(client):
    _Receiver.received = []
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        client.control("POST", "/config", {
            "webhook_url": f"http://127.0.0.1:{receiver.server_port}/hooks/paypal"})
        status, created = client.create(batch("ok@example.com", "no+fail@example.com",
                                              "later+unclaimed@example.com"))
        poll_until_done(client, created["batch_header"]["payout_batch_id"])
        client.control("POST", "/advance", {"days": 31})
    finally:
        receiver.shutdown()
        receiver.server_close()
    item_events = [(e["event_type"], e["resource"]["payout_item"]["receiver"])
                   for e in _Receiver.received if e["resource_type"] == "payouts_item"]
    assert item_events == [
        ("PAYMENT.PAYOUTS-ITEM.SUCCEEDED", "ok@example.com"),
        ("PAYMENT.PAYOUTS-ITEM.FAILED", "no+fail@example.com"),
        ("PAYMENT.PAYOUTS-ITEM.UNCLAIMED", "later+unclaimed@example.com"),
        ("PAYMENT.PAYOUTS-ITEM.RETURNED", "later+unclaimed@example.com"),
    ]
    assert all(e["id"] and e["resource"]["payout_item_id"] and e["resource"]["payout_batch_id"]
               for e in _Receiver.received if e["resource_type"] == "payouts_item")
    assert "PAYMENT.PAYOUTSBATCH.SUCCESS" in [e["event_type"] for e in _Receiver.received]
    events = client.control("GET", "/events")["events"]
    assert all(record["delivered"] for record in events)
