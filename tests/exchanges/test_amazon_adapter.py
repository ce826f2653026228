"""The Amazon Incentives adapter reads Amazon's own answers (recorded ones, fed straight to
it) and signs what the sandbox verifies."""
from __future__ import annotations

import datetime as dt

import pytest

from settlement.exchanges.amazon import (FAILURE, RESEND, SUCCESS, IncentivesClient,
                                         creation_request_id, read_answer, sign)
from sandboxes.amazon import serve

# A CreateGiftCard answer as a client library recorded it from Amazon (UK, £10): the amount
# is a JSON number with a decimal point.
RECORDED_SUCCESS = (
    b'{"cardInfo":{"cardNumber":null,"cardStatus":"Fulfilled","expirationDate":null,'
    b'"value":{"amount":10.0,"currencyCode":"GBP"}},"creationRequestId":"LegenB5ta6171061710",'
    b'"gcClaimCode":"UL7G-6VNS6V-USPU","gcExpirationDate":"Tue Nov 30 23:59:59 UTC 2027",'
    b'"gcId":"A300FFD9R1809J","status":"SUCCESS"}')


def test_a_recorded_success_gives_the_claim_code_id_and_a_whole_amount():
    answer = read_answer(200, RECORDED_SUCCESS)
    assert (answer.status, answer.claim_code, answer.gc_id, answer.amount, answer.currency,
            answer.card_status) == (SUCCESS, "UL7G-6VNS6V-USPU", "A300FFD9R1809J", 10, "GBP",
                                    "Fulfilled")


def test_a_fractional_amount_is_never_rounded_into_yen():
    with pytest.raises(ValueError, match="not whole yen"):
        read_answer(200, RECORDED_SUCCESS.replace(b"10.0", b"10.5"))


@pytest.mark.parametrize("http, body, status", [
    (400, b'{"agcodResponse":{"status":"FAILURE"},"errorCode":"F202",'
          b'"errorType":"InvalidAmountValue","message":"Amount must be more than 0"}', FAILURE),
    (400, b'{"agcodResponse":{"status":"RESEND"},"errorCode":"F400",'
          b'"errorType":"SystemTemporarilyUnavailable","message":"retry"}', RESEND),
    (500, b'{"errorCode":"F100","errorType":"InternalServerError"}', RESEND),
    (400, b'{"errorCode":"F300","errorType":"InsufficientFunds"}', FAILURE),
    (502, b'<html>bad gateway</html>', RESEND),
    (200, b'{"status":"SUCCESS","errorCode":"F500"}', RESEND),
], ids=["F202-failure", "F400-resend", "F100-resend", "F300-failure", "not-json",
        "contradiction"])
def test_error_classes_decide_between_refused_and_ask_again(http, body, status):
    assert read_answer(http, body).status == status


def test_a_creation_request_id_is_alphanumeric_starts_with_the_partner_and_fits_40():
    request_id = creation_request_id("Sandb", 2_147_483_647, 9_223_372_036_854_775_807)
    assert request_id.startswith("Sandb") and request_id.isalnum() and len(request_id) <= 40


def test_the_sandbox_refuses_a_wrong_signature_and_makes_no_card():
    with serve() as server:
        client = IncentivesClient(server.base_url, "Sandb", "sandbox-access-key", "wrong",
                                  "us-west-2", timeout=5)
        assert client.create("SandbT1E1", 500, "JPY").status == RESEND
        assert server.sandbox.cards == {}


def test_a_signature_changes_with_the_body():
    moment = dt.datetime(2026, 11, 19, 1, 0, 0)
    one = sign("s", "a", "us-west-2", "h", "/CreateGiftCard", "t", b"{}", moment)
    two = sign("s", "a", "us-west-2", "h", "/CreateGiftCard", "t", b"{ }", moment)
    assert one["authorization"] != two["authorization"]
    assert one["x-amz-date"] == "20261119T010000Z"
