"""The PayPal adapter against the local PayPal Payouts sandbox, over real HTTP.

Every test talks to one sandbox server (reset between tests) the way it would talk to
PayPal; what PayPal recorded is read back through the sandbox's control API.
"""
from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from settlement.config import Settings
from settlement.payouts.base import (
    FAILED,
    PENDING,
    REFUSED,
    SUBMITTED,
    SUCCEEDED,
    UNCLAIMED,
    UNKNOWN,
    BatchContext,
    PayoutLine,
)
from settlement.payouts.paypal import MAX_ITEMS, PayPalAdapter, parse_webhook
from sandboxes.paypal import serve

CLIENT_ID = "adapter-test-client"
CLIENT_SECRET = "adapter-test-secret"
CLIENT_TIMEOUT = 0.5  # seconds; the sandbox's after-accept timeout sleeps longer
SANDBOX_DEFAULTS = {"polls_per_step": 1, "timeout_after_accept_seconds": 1.5,
                    "token_ttl_seconds": 32_400, "webhook_url": None}

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Sandbox:
    """The sandbox's control API (not PayPal's), over HTTP."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base_url}/_sandbox{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        with _OPENER.open(req, timeout=5) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        self.control("POST", "/reset")
        self.control("POST", "/config", SANDBOX_DEFAULTS)

    def configure(self, **settings) -> None:
        self.control("POST", "/config", settings)

    def faults(self, *faults: dict) -> None:
        self.control("POST", "/faults", {"next": list(faults)})

    def applied_faults(self) -> list[dict]:
        return self.control("GET", "/faults")["applied"]

    def batches(self, sender_batch_id: str | None = None) -> list[dict]:
        query = f"?sender_batch_id={sender_batch_id}" if sender_batch_id else ""
        return self.control("GET", f"/batches{query}")["batches"]

    def advance(self, days: float = 0, seconds: float = 0) -> None:
        self.control("POST", "/advance", {"days": days, "seconds": seconds})

    def events(self) -> list[dict]:
        return self.control("GET", "/events")["events"]


@pytest.fixture(scope="module")
def server():
    srv, base_url = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                          **SANDBOX_DEFAULTS)
    yield srv, base_url
    srv.shutdown()


@pytest.fixture
def sandbox(server):
    control = Sandbox(server[1])
    control.reset()
    yield control
    control.reset()  # also wakes a request still sleeping in a timeout fault


@pytest.fixture
def adapter(sandbox):
    return make_adapter(sandbox)


def make_adapter(sandbox: Sandbox, **overrides) -> PayPalAdapter:
    settings = {"timeout": CLIENT_TIMEOUT, "retries": 2, "backoff": 0.01, **overrides}
    return PayPalAdapter(sandbox.base_url, CLIENT_ID, CLIENT_SECRET, **settings)


def make_ctx(seq: int = 1) -> BatchContext:
    run = uuid.uuid4().hex[:8]
    return BatchContext(tenant="acme", run_id=7, payout_date=dt.date(2026, 11, 15),
                        method="paypal", seq=seq,
                        idempotency_key=f"acme-run{run}-paypal-{seq:03d}",
                        outbox=Path("/nonexistent"))


def line(n: int, receiver: str, amount: int = 1234, currency: str = "USD",
         digits: int = 2) -> PayoutLine:
    return PayoutLine(item_id=n, reference=f"item-{n}", member=f"m{n}", amount=amount,
                      currency=currency, digits=digits, points=None, destination=receiver,
                      address=None)


def poll_until(adapter, ctx, batch_id, lines, *, limit: int = 10, until=None):
    """Poll until `until(result)` (default: the batch is done)."""
    until = until or (lambda r: r.done)
    for _ in range(limit):
        result = adapter.poll(ctx, batch_id, lines)
        assert result.error is None, result.error
        if until(result):
            return result
    raise AssertionError(f"batch {batch_id} not there after {limit} polls: {result}")


def by_item(result) -> dict:
    return {o.item_id: o for o in result.outcomes}


# --- submitting and polling ----------------------------------------------------------


def test_batch_is_submitted_once_with_the_derived_sender_batch_id_and_decimal_amounts(
        adapter, sandbox):
    ctx = make_ctx()
    lines = [line(1, "alice@example.com", 1234), line(2, "bob@example.com", 5),
             line(3, "kenji@example.jp", 1500, "JPY", 0)]
    result = adapter.submit(ctx, lines)
    assert result.state == SUBMITTED and result.error is None
    [batch] = sandbox.batches()
    assert batch["payout_batch_id"] == result.provider_batch_id
    assert batch["sender_batch_id"] == ctx.idempotency_key
    assert batch["sender_batch_header"]["recipient_type"] == "EMAIL"
    assert [(i["sender_item_id"], i["receiver"], i["recipient_type"], i["amount"])
            for i in batch["items"]] == [
        ("item-1", "alice@example.com", "EMAIL", {"value": "12.34", "currency": "USD"}),
        ("item-2", "bob@example.com", "EMAIL", {"value": "0.05", "currency": "USD"}),
        ("item-3", "kenji@example.jp", "EMAIL", {"value": "1500", "currency": "JPY"}),
    ]


def test_items_are_polled_to_their_outcomes_failed_with_reason_and_unclaimed_then_returned(
        adapter, sandbox):
    ctx = make_ctx()
    lines = [line(1, "alice@example.com"), line(2, "bob+fail@example.com"),
             line(3, "carol+unclaimed@example.com")]
    submitted = adapter.submit(ctx, lines)
    assert submitted.state == SUBMITTED

    first = adapter.poll(ctx, submitted.provider_batch_id, lines)  # PENDING -> PROCESSING
    assert first.state == SUBMITTED and not first.done
    assert first.outcomes == []  # a processing batch: its header is read, not its items

    settled = poll_until(adapter, ctx, submitted.provider_batch_id, lines,
                         until=lambda r: r.outcomes[0].status != PENDING)
    outcomes = by_item(settled)
    assert outcomes[1].status == SUCCEEDED and outcomes[1].provider_status == "SUCCESS"
    assert outcomes[2].status == FAILED and outcomes[2].provider_status == "FAILED"
    assert "FAILED" in outcomes[2].reason and "RECEIVER_UNREGISTERED" in outcomes[2].reason
    assert outcomes[3].status == UNCLAIMED and outcomes[3].reason is None
    assert not settled.done  # an unclaimed item may still change
    recorded = {i["sender_item_id"]: i["payout_item_id"] for i in sandbox.batches()[0]["items"]}
    assert {o.provider_item_id for o in settled.outcomes} == set(recorded.values())

    sandbox.advance(days=31)  # unclaimed for 30 days: PayPal returns the money
    returned = adapter.poll(ctx, submitted.provider_batch_id, lines)
    carol = by_item(returned)[3]
    assert (carol.status, carol.provider_status) == (FAILED, "RETURNED")
    assert "RETURNED" in carol.reason
    assert returned.done


def test_onhold_and_pending_items_stay_pending_and_keep_the_batch_open(adapter, sandbox):
    sandbox.configure(polls_per_step=0)  # the batch completes at its first poll
    ctx = make_ctx()
    lines = [line(1, "dora+onhold@example.com"), line(2, "eve+pending@example.com"),
             line(3, "finn+blocked@example.com")]
    result = adapter.poll(ctx, adapter.submit(ctx, lines).provider_batch_id, lines)
    outcomes = by_item(result)
    assert (outcomes[1].status, outcomes[1].provider_status) == (PENDING, "ONHOLD")
    assert (outcomes[2].status, outcomes[2].provider_status) == (PENDING, "PENDING")
    assert outcomes[3].status == FAILED and "BLOCKED" in outcomes[3].reason
    assert not result.done


def test_paging_reads_every_item_of_a_batch_larger_than_the_page_size(sandbox):
    sandbox.configure(polls_per_step=0)
    adapter = make_adapter(sandbox, page_size=3)
    ctx = make_ctx()
    lines = [line(n, f"member{n}@example.com" if n != 6 else "six+fail@example.com")
             for n in range(1, 9)]
    batch_id = adapter.submit(ctx, lines).provider_batch_id
    result = adapter.poll(ctx, batch_id, lines)
    assert result.error is None and result.done
    assert [o.item_id for o in result.outcomes] == list(range(1, 9))
    assert [o.status for o in result.outcomes] == [SUCCEEDED] * 5 + [FAILED] + [SUCCEEDED] * 2


# --- idempotency ---------------------------------------------------------------------


def test_submitting_the_same_batch_twice_records_one_batch_and_answers_the_same_id(
        adapter, sandbox):
    ctx = make_ctx()
    lines = [line(1, "alice@example.com")]
    first = adapter.submit(ctx, lines)
    again = make_adapter(sandbox).submit(ctx, lines)  # e.g. a worker restarted
    assert first.state == again.state == SUBMITTED
    assert again.provider_batch_id == first.provider_batch_id
    assert len(sandbox.batches()) == 1


def test_a_5xx_before_accept_is_retried_with_the_same_sender_batch_id_and_pays_once(
        adapter, sandbox):
    sandbox.faults({"kind": "http_503", "count": 1}, {"kind": "http_500", "count": 1})
    ctx = make_ctx()
    result = adapter.submit(ctx, [line(1, "alice@example.com")])
    assert result.state == SUBMITTED
    assert [f["kind"] for f in sandbox.applied_faults()] == ["http_503", "http_500"]
    [batch] = sandbox.batches()
    assert batch["sender_batch_id"] == ctx.idempotency_key
    assert batch["payout_batch_id"] == result.provider_batch_id


def test_persistent_5xx_is_unknown_and_find_then_submits_the_batch_once(adapter, sandbox):
    sandbox.faults({"kind": "http_500", "count": adapter.retries + 1})
    ctx = make_ctx()
    lines = [line(1, "alice@example.com")]
    result = adapter.submit(ctx, lines)
    assert result.state == UNKNOWN and "INTERNAL_SERVER_ERROR" in result.error
    assert sandbox.batches() == []
    found = adapter.find(ctx, lines)  # PayPal never had it: the POST creates it now
    assert found.state == SUBMITTED
    [batch] = sandbox.batches()
    assert batch["payout_batch_id"] == found.provider_batch_id
    assert adapter.find(ctx, lines).provider_batch_id == found.provider_batch_id
    assert len(sandbox.batches()) == 1


def test_a_timeout_after_accept_is_unknown_and_find_returns_the_original_batch(
        adapter, sandbox):
    sandbox.faults({"kind": "timeout_after_accept"})
    ctx = make_ctx()
    lines = [line(1, "alice@example.com"), line(2, "bob+fail@example.com")]
    result = adapter.submit(ctx, lines)
    assert result.state == UNKNOWN and result.provider_batch_id is None
    [original] = sandbox.batches()  # PayPal has it; we do not know
    found = adapter.find(ctx, lines)
    assert found.state == SUBMITTED
    assert found.provider_batch_id == original["payout_batch_id"]
    assert len(sandbox.batches()) == 1
    sandbox.configure(polls_per_step=0)
    assert poll_until(adapter, ctx, found.provider_batch_id, lines).done


def test_a_500_after_accept_is_unknown_and_find_returns_the_original_batch(sandbox):
    adapter = make_adapter(sandbox, retries=0)
    sandbox.faults({"kind": "http_500_after_accept"})
    ctx = make_ctx()
    lines = [line(1, "alice@example.com")]
    assert adapter.submit(ctx, lines).state == UNKNOWN
    [original] = sandbox.batches()
    found = adapter.find(ctx, lines)
    assert (found.state, found.provider_batch_id) == (SUBMITTED, original["payout_batch_id"])
    assert len(sandbox.batches()) == 1


def test_a_500_after_accept_retried_with_the_same_id_finds_the_original_batch(
        adapter, sandbox):
    sandbox.faults({"kind": "http_500_after_accept"})
    ctx = make_ctx()
    result = adapter.submit(ctx, [line(1, "alice@example.com")])
    [original] = sandbox.batches()
    assert (result.state, result.provider_batch_id) == (SUBMITTED, original["payout_batch_id"])


def test_a_dropped_connection_after_accept_is_unknown_and_find_returns_the_original(
        adapter, sandbox):
    sandbox.faults({"kind": "drop_connection_after_accept"})
    ctx = make_ctx()
    lines = [line(1, "alice@example.com")]
    assert adapter.submit(ctx, lines).state == UNKNOWN
    [original] = sandbox.batches()
    assert adapter.find(ctx, lines).provider_batch_id == original["payout_batch_id"]
    assert len(sandbox.batches()) == 1


def test_a_dropped_connection_before_accept_is_unknown_too_and_find_submits_once(
        adapter, sandbox):
    sandbox.faults({"kind": "drop_connection"})
    ctx = make_ctx()
    lines = [line(1, "alice@example.com")]
    assert adapter.submit(ctx, lines).state == UNKNOWN  # the client cannot tell the two apart
    assert sandbox.batches() == []
    found = adapter.find(ctx, lines)
    [batch] = sandbox.batches()
    assert (found.state, found.provider_batch_id) == (SUBMITTED, batch["payout_batch_id"])


def test_find_answers_unknown_again_while_paypal_keeps_failing(adapter, sandbox):
    sandbox.faults({"kind": "timeout_after_accept"})
    ctx = make_ctx()
    lines = [line(1, "alice@example.com")]
    assert adapter.submit(ctx, lines).state == UNKNOWN
    sandbox.faults({"kind": "http_503", "count": adapter.retries + 1})
    assert adapter.find(ctx, lines).state == UNKNOWN
    sandbox.faults({"kind": "drop_connection"})
    assert adapter.find(ctx, lines).state == UNKNOWN
    sandbox.faults({"kind": "delay", "seconds": 0.8})  # longer than the client waits
    assert adapter.find(ctx, lines).state == UNKNOWN
    time.sleep(0.5)  # the late request is processed now: refused as a duplicate
    assert len(sandbox.batches()) == 1


# --- refusals ------------------------------------------------------------------------


def test_a_denied_batch_is_refused_with_every_item_failed(adapter, sandbox):
    sandbox.faults({"kind": "deny_batch"})
    ctx = make_ctx()
    lines = [line(1, "alice@example.com"), line(2, "bob@example.com")]
    result = adapter.submit(ctx, lines)
    assert result.state == REFUSED and result.done
    assert [o.item_id for o in result.outcomes] == [1, 2]
    for outcome in result.outcomes:
        assert outcome.status == FAILED
        assert "INSUFFICIENT_FUNDS" in outcome.reason
    polled = adapter.poll(ctx, result.provider_batch_id, lines)
    assert polled.state == REFUSED and polled.done
    assert {o.status for o in polled.outcomes} == {FAILED}


def test_an_invalid_receiver_refuses_the_whole_batch_and_nothing_is_recorded(
        adapter, sandbox):
    ctx = make_ctx()
    lines = [line(1, "alice@example.com"), line(2, "not-an-email"),
             line(3, "carol@example.com")]
    result = adapter.submit(ctx, lines)
    assert result.state == REFUSED and result.provider_batch_id is None
    assert "VALIDATION_ERROR" in result.error and "items[1].receiver" in result.error
    assert sandbox.batches() == []
    outcomes = by_item(result)
    assert {o.status for o in outcomes.values()} == {FAILED}
    assert "items[1].receiver" in outcomes[2].reason
    assert "other items" in outcomes[1].reason


def test_more_than_15000_lines_raise_before_anything_is_sent(adapter, sandbox):
    lines = [line(n, f"m{n}@example.com") for n in range(MAX_ITEMS + 1)]
    with pytest.raises(ValueError, match="15000"):
        adapter.submit(make_ctx(), lines)
    assert sandbox.batches() == []


def test_lines_that_paypal_could_not_tell_apart_raise(adapter, sandbox):
    twice = [line(1, "a@example.com"), line(1, "b@example.com")]
    with pytest.raises(ValueError, match="twice"):
        adapter.submit(make_ctx(), twice)
    with pytest.raises(ValueError, match="no PayPal email"):
        adapter.submit(make_ctx(), [line(1, "")])


def test_wrong_credentials_leave_the_batch_unsent_and_unknown(sandbox):
    adapter = PayPalAdapter(sandbox.base_url, CLIENT_ID, "wrong", timeout=CLIENT_TIMEOUT,
                            retries=0)
    result = adapter.submit(make_ctx(), [line(1, "alice@example.com")])
    assert result.state == UNKNOWN and "invalid_client" in result.error
    assert sandbox.batches() == []


# --- tokens and transport -------------------------------------------------------------


def test_the_token_is_reused_and_renewed_after_paypal_expires_it(adapter, sandbox):
    ctx = make_ctx()
    lines = [line(1, "alice@example.com")]
    batch_id = adapter.submit(ctx, lines).provider_batch_id
    token = adapter._token
    adapter.poll(ctx, batch_id, lines)
    assert adapter._token == token  # cached, not fetched per call
    sandbox.advance(days=1)  # past the token's lifetime on PayPal's clock
    result = adapter.poll(ctx, batch_id, lines)
    assert result.error is None and result.outcomes
    assert adapter._token != token


def test_a_token_endpoint_5xx_is_retried(adapter, sandbox):
    sandbox.faults({"kind": "http_503", "on": "token"})
    assert adapter.submit(make_ctx(), [line(1, "alice@example.com")]).state == SUBMITTED


def test_a_transient_poll_failure_is_retried_and_a_lasting_one_is_reported_not_raised(
        adapter, sandbox):
    ctx = make_ctx()
    lines = [line(1, "alice@example.com")]
    batch_id = adapter.submit(ctx, lines).provider_batch_id
    sandbox.faults({"kind": "http_500", "on": "get"})
    assert adapter.poll(ctx, batch_id, lines).error is None
    sandbox.faults({"kind": "delay", "seconds": 0.7, "on": "get",
                    "count": adapter.retries + 1})
    failed = adapter.poll(ctx, batch_id, lines)
    assert failed.state == SUBMITTED and not failed.done and failed.error


def test_an_unreachable_paypal_is_unknown_not_an_exception(sandbox):
    adapter = PayPalAdapter("http://127.0.0.1:9", CLIENT_ID, CLIENT_SECRET,
                            timeout=CLIENT_TIMEOUT, retries=1, backoff=0.01)
    result = adapter.submit(make_ctx(), [line(1, "alice@example.com")])
    assert result.state == UNKNOWN and "not sent" in result.error


def test_the_adapter_is_built_from_settings():
    settings = Settings(paypal_base_url="https://api-m.example.test/",
                        paypal_client_id="id", paypal_client_secret="secret")
    adapter = PayPalAdapter.from_settings(settings, timeout=3, retries=1)
    assert (adapter.base_url, adapter.client_id, adapter.client_secret) == (
        "https://api-m.example.test", "id", "secret")
    assert (adapter.timeout, adapter.retries, adapter.method) == (3.0, 1, "paypal")


# --- webhooks --------------------------------------------------------------------------


def test_item_webhooks_are_parsed_into_item_outcomes(adapter, sandbox):
    sandbox.configure(polls_per_step=0)
    ctx = make_ctx()
    lines = [line(1, "alice@example.com"), line(2, "bob+fail@example.com")]
    batch_id = adapter.submit(ctx, lines).provider_batch_id
    adapter.poll(ctx, batch_id, lines)
    parsed = {}
    for record in sandbox.events():
        info = parse_webhook(json.dumps(record["event"]).encode())
        if info is not None:
            parsed[info.sender_item_id] = info
        else:
            assert record["event"]["event_type"].startswith("PAYMENT.PAYOUTSBATCH.")
    assert set(parsed) == {"item-1", "item-2"}
    assert parsed["item-1"].status == SUCCEEDED
    assert parsed["item-1"].payout_batch_id == batch_id
    assert parsed["item-1"].sender_batch_id == ctx.idempotency_key
    failed = parsed["item-2"].outcome(2)
    assert (failed.status, failed.provider_status) == (FAILED, "FAILED")
    assert "RECEIVER_UNREGISTERED" in failed.reason and failed.provider_item_id
    with pytest.raises(ValueError):
        parse_webhook(b"not json")
