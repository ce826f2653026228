"""The Amazon Incentives adapter fed answers Amazon really gave, recorded by a public client
library, straight over HTTP from a replay server (not through our sandbox); and our sandbox
checked to answer Amazon's mock request ids with those same bodies.

Source of the recorded bodies (quoted as data): gullevek/amazon-incentives (PHP, on
Packagist as gullevek/amazon-incentives), its notes "Return data from AWS as json string":
the section "Mock tests self" (JPY cards: a create, a cancel, the same creationRequestId
asked again after the cancel) and "AWS GCOD Mocks" (what Amazon's sandbox answers to its
mock request ids F0000, F1000 ... F5000).
"""
from __future__ import annotations

import datetime as dt
import json

import pytest
from werkzeug.test import Client

from settlement.exchanges.amazon import (FAILURE, RESEND, SUCCESS, TARGET, IncentivesClient,
                                         sign)
from sandboxes.amazon import MOCK_ERRORS, AmazonSandbox
from tests.payouts.test_paypal_recorded import Replay

CREATED = ('{"cardInfo":{"cardNumber":null,"cardStatus":"Fulfilled","expirationDate":null,'
           '"value":{"amount":1000.0,"currencyCode":"JPY"}},"creationRequestId":'
           '"PartnerId_62a309167e7a4","gcClaimCode":"LJ49-AKDUV6-UYCP","gcExpirationDate":'
           '"Thu Jun 10 14:59:59 UTC 2032","gcId":"5535125272070255","status":"SUCCESS"}')
CANCELLED = ('{"creationRequestId":"EG3bd_62a309167e7a4","gcId":"5535125272070255",'
             '"status":"SUCCESS"}')
ASKED_AFTER_CANCEL = CREATED.replace('"Fulfilled"', '"RefundedToPurchaser"')
MOCK_SUCCESS = ('{"cardInfo":{"cardNumber":null,"cardStatus":"Fulfilled","expirationDate":null,'
                '"value":{"amount":500.0,"currencyCode":"JPY"}},"creationRequestId":"F0000",'
                '"gcClaimCode":"ZYXW-VUTS-RQPO","gcExpirationDate":null,"gcId":"ABC123ZYX987",'
                '"status":"SUCCESS"}')


def _error(code: str, kind: str, message: str, status: str = "FAILURE") -> str:
    """Every recorded error has this one shape; only these four values differ."""
    return ('{"agcodResponse":{"__type":"CreateGiftCardResponse:http://internal.amazon.com/'
            'coral/com.amazonaws.agcod/","cardInfo":null,"creationRequestId":null,'
            '"gcClaimCode":null,"gcExpirationDate":null,"gcId":null,"status":"' + status +
            '"},"errorCode":"' + code + '","errorType":"' + kind + '","message":"' + message +
            '"}')


RECORDED_ERRORS = {  # mock request id: recorded answer
    "F1000": _error("F100", "GeneralError", "General Error"),
    "F2003": _error("F200", "InvalidAmountInput", "Amount can't be null"),
    "F2004": _error("F200", "InvalidAmountValue", "Amount must be larger than 0"),
    "F2005": _error("F200", "InvalidCurrencyCodeInput", "Currency Code can't be null or empty"),
    "F2010": _error("F200", "CardAlreadyActivatedWithDifferentRequestId",
                    "The card was already activated with a different request id"),
    "F2015": _error("F200", "MaxAmountExceeded", "Max Amount Exceeded"),
    "F2016": _error("F200", "CurrencyCodeMismatch", "Currency Code Mismatch"),
    "F2017": _error("F200", "FractionalAmountNotAllowed", "Fractional Amount Not Allowed"),
    "F2047": _error("F200", "CancelRequestArrivedAfterTimeLimit",
                    "Cancellation cannot be processed as too much time has elapsed since "
                    "creation"),
    "F3003": _error("F300", "InsufficientFunds", "Insufficient Funds"),
    "F3005": _error("F300", "GeneralError", "General Error"),
    "F3010": _error("F300", "CustomerSurpassedDailyVelocityLimit",
                    "Customer has exceeded daily velocity limit"),
    "F4000": _error("F400", "SystemTemporarilyUnavailable", "System Temporarily Unavailable",
                    "RESEND"),
    "F5000": _error("F500", "GeneralError", "General Error"),
}
# Amazon's error classes: F2xx (the request) and F3xx (the account) refuse; F100 (Amazon's
# own), F400 (temporary) and F500 (unknown) do not say whether a card exists.
VERDICT = {"F1": RESEND, "F2": FAILURE, "F3": FAILURE, "F4": RESEND, "F5": RESEND}


@pytest.fixture
def replay():
    servers = []

    def start(operation: str, status: int, raw: str) -> IncentivesClient:
        server = Replay({("POST", f"/{operation}"): (status, json.loads(raw))})
        servers.append(server)
        return IncentivesClient(server.url, "PartnerId", "key", "secret", "us-west-2",
                                timeout=2)
    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("mock_id", sorted(RECORDED_ERRORS))
def test_a_recorded_error_refuses_only_for_our_request_or_account_and_is_read_whole(
        replay, mock_id):
    raw = RECORDED_ERRORS[mock_id]
    http = 500 if mock_id[:2] in ("F1", "F5") else 400
    answer = replay("CreateGiftCard", http, raw).create(mock_id, 500, "JPY")
    recorded = json.loads(raw)
    assert answer.status == VERDICT[mock_id[:2]]
    assert (answer.error_code, answer.error_type, answer.message, answer.claim_code) == (
        recorded["errorCode"], recorded["errorType"], recorded["message"], None)


def test_f500_answered_with_status_failure_is_asked_again_not_taken_as_a_refusal(replay):
    # The recording says FAILURE; an unknown error cannot tell whether the card was made.
    assert json.loads(RECORDED_ERRORS["F5000"])["agcodResponse"]["status"] == FAILURE
    assert replay("CreateGiftCard", 500, RECORDED_ERRORS["F5000"]).create(
        "PartnerIdT1E1", 500, "JPY").status == RESEND


def test_a_recorded_jpy_card_gives_its_code_id_and_whole_yen(replay):
    answer = replay("CreateGiftCard", 200, CREATED).create("PartnerIdT1E1", 1000, "JPY")
    assert (answer.status, answer.claim_code, answer.gc_id, answer.amount, answer.currency,
            answer.card_status) == (SUCCESS, "LJ49-AKDUV6-UYCP", "5535125272070255", 1000,
                                    "JPY", "Fulfilled")


def test_the_recorded_answer_after_a_cancel_is_success_with_a_refunded_card(replay):
    answer = replay("CreateGiftCard", 200, ASKED_AFTER_CANCEL).create("PartnerIdT1E1", 1000,
                                                                      "JPY")
    assert (answer.status, answer.card_status) == (SUCCESS, "RefundedToPurchaser")


def test_a_recorded_cancel_is_a_success(replay):
    answer = replay("CancelGiftCard", 200, CANCELLED).cancel("EG3bd_62a309167e7a4")
    assert (answer.status, answer.gc_id) == (SUCCESS, "5535125272070255")


def _sandbox_answer(sandbox: AmazonSandbox, operation: str, body: dict) -> tuple[int, dict]:
    raw = json.dumps(body).encode()
    headers = sign(sandbox.secret_key, sandbox.access_key, sandbox.region, "localhost",
                   f"/{operation}", TARGET + operation, raw,
                   dt.datetime.now(dt.timezone.utc))
    response = Client(sandbox).post(f"/{operation}", data=raw, headers=headers)
    return response.status_code, json.loads(response.get_data())


@pytest.mark.parametrize("mock_id", sorted(RECORDED_ERRORS))
def test_the_sandbox_answers_amazons_mock_ids_with_the_recorded_bodies(mock_id):
    sandbox = AmazonSandbox()
    _, body = _sandbox_answer(sandbox, "CreateGiftCard", {
        "creationRequestId": mock_id, "partnerId": sandbox.partner_id,
        "value": {"currencyCode": "JPY", "amount": 500}})
    assert body == json.loads(RECORDED_ERRORS[mock_id])
    assert set(MOCK_ERRORS) == set(RECORDED_ERRORS)


def test_the_sandbox_answers_the_mock_success_id_with_the_recorded_card():
    sandbox = AmazonSandbox()
    status, body = _sandbox_answer(sandbox, "CreateGiftCard", {
        "creationRequestId": "F0000", "partnerId": sandbox.partner_id,
        "value": {"currencyCode": "JPY", "amount": 500}})
    assert (status, body) == (200, json.loads(MOCK_SUCCESS))


def test_the_sandbox_card_has_the_recorded_shape_and_a_repeat_after_cancel_is_refunded():
    sandbox = AmazonSandbox()
    create = {"creationRequestId": "SandbT1E1", "partnerId": sandbox.partner_id,
              "value": {"currencyCode": "JPY", "amount": 1000}}
    _, card = _sandbox_answer(sandbox, "CreateGiftCard", create)
    recorded = json.loads(CREATED)
    assert set(card) == set(recorded) and set(card["cardInfo"]) == set(recorded["cardInfo"])
    assert [len(part) for part in card["gcClaimCode"].split("-")] == [4, 6, 4]
    assert card["gcId"].isdigit() and len(card["gcId"]) == 16
    assert card["cardInfo"]["value"] == {"amount": 1000.0, "currencyCode": "JPY"}
    _, cancelled = _sandbox_answer(sandbox, "CancelGiftCard", {
        "creationRequestId": "SandbT1E1", "partnerId": sandbox.partner_id})
    assert set(cancelled) == set(json.loads(CANCELLED)) and cancelled["status"] == SUCCESS
    _, again = _sandbox_answer(sandbox, "CreateGiftCard", create)
    assert (again["gcClaimCode"], again["cardInfo"]["cardStatus"]) == (
        card["gcClaimCode"], "RefundedToPurchaser")
