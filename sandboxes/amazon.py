"""A local Amazon Incentives API (AGCOD) sandbox: CreateGiftCard and CancelGiftCard as
Amazon documents them, for tests and the demo.

It checks what Amazon checks: the Signature Version 4 signature (with the key pair it is
given), `x-amz-target`, the partner id, a `creationRequestId` of at most 40 alphanumerics
that starts with the partner id, a positive whole amount in the configured currency, and
the pre-payment account's funds. A `creationRequestId` seen before is answered with the
card it already made (Amazon's retry rule); with another amount it is an F200 error.
Cancelled cards answer `cardStatus: RefundedToPurchaser`.

Amazon's mock request ids are answered as Amazon's sandbox answers them (MOCK_ERRORS,
recorded). Scripted trouble for tests: `script(request_id, "F400")` answers that id's next
create with the recorded F400 (RESEND, no card made), `"F100"`, `"F300"`, `"F500"` with
theirs (status FAILURE),
`"lost"` makes the card but drops the connection before answering, and `"slow"` makes it
and answers only after `slow_seconds` (a caller can be killed meanwhile).

Command line: ``python -m sandboxes.amazon --port 8766`` (loopback only, unless
``--allow-public``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import secrets
import socket
import threading
import time
from decimal import Decimal

from werkzeug.wrappers import Request, Response

from sandboxes.bind import PublicBindRefused
from sandboxes.serving import SandboxServer, serve_in_thread
from settlement.exchanges.amazon import CARD_NOT_FOUND, SERVICE, TARGET, sign

# Amazon's sandbox answers these creationRequestIds with the error they name (its "mock
# error" ids). (errorCode, errorType, message, status) as recorded from Amazon's sandbox in
# gullevek/amazon-incentives' notes of AWS answers ("AWS GCOD Mocks"); the HTTP status of an
# error is not in the recording: 400 for the request's and account's errors and F400, 500
# for Amazon's own (F100, F500).
MOCK_ERRORS = {
    "F1000": ("F100", "GeneralError", "General Error", "FAILURE"),
    "F2003": ("F200", "InvalidAmountInput", "Amount can't be null", "FAILURE"),
    "F2004": ("F200", "InvalidAmountValue", "Amount must be larger than 0", "FAILURE"),
    "F2005": ("F200", "InvalidCurrencyCodeInput", "Currency Code can't be null or empty",
              "FAILURE"),
    "F2010": ("F200", "CardAlreadyActivatedWithDifferentRequestId",
              "The card was already activated with a different request id", "FAILURE"),
    "F2015": ("F200", "MaxAmountExceeded", "Max Amount Exceeded", "FAILURE"),
    "F2016": ("F200", "CurrencyCodeMismatch", "Currency Code Mismatch", "FAILURE"),
    "F2017": ("F200", "FractionalAmountNotAllowed", "Fractional Amount Not Allowed",
              "FAILURE"),
    "F2047": ("F200", "CancelRequestArrivedAfterTimeLimit", "Cancellation cannot be "
              "processed as too much time has elapsed since creation", "FAILURE"),
    "F3003": ("F300", "InsufficientFunds", "Insufficient Funds", "FAILURE"),
    "F3005": ("F300", "GeneralError", "General Error", "FAILURE"),
    "F3010": ("F300", "CustomerSurpassedDailyVelocityLimit",
              "Customer has exceeded daily velocity limit", "FAILURE"),
    "F4000": ("F400", "SystemTemporarilyUnavailable", "System Temporarily Unavailable",
              "RESEND"),
    "F5000": ("F500", "GeneralError", "General Error", "FAILURE"),
}
# The mock success id, answered with the recorded card (JPY 500).
MOCK_SUCCESS = {"creationRequestId": "F0000", "gcClaimCode": "ZYXW-VUTS-RQPO",
                "gcId": "ABC123ZYX987", "amount": 500}
# What script(id, code) answers: the recorded mock error of that class.
SCRIPTED = {"F100": "F1000", "F200": "F2003", "F300": "F3003", "F400": "F4000",
            "F500": "F5000"}
REQUEST_ID = re.compile(r"[A-Za-z0-9]{1,40}")


class AmazonSandbox:
    def __init__(self, partner_id="Sandb", access_key="sandbox-access-key",
                 secret_key="sandbox-secret-key", region="us-west-2", currency="JPY",
                 funds: int = 10_000_000):
        self.partner_id, self.access_key, self.secret_key = partner_id, access_key, secret_key
        self.region, self.currency, self.funds = region, currency, funds
        self.cards: dict[str, dict] = {}
        self.scripted: dict[str, list[str]] = {}
        self.creates = 0  # CreateGiftCard calls answered (retries included)
        self.slow_seconds = 30.0
        self._lock = threading.Lock()

    def script(self, request_id: str, *trouble: str) -> None:
        with self._lock:
            self.scripted.setdefault(request_id, []).extend(trouble)

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.method != "POST" or request.path not in ("/CreateGiftCard",
                                                            "/CancelGiftCard"):
            return Response("not found", 404)(environ, start_response)
        operation = request.path[1:]
        raw = request.get_data()
        if not self._signed(request, operation, raw):
            return self._json(403, {"message": "The request signature we calculated does "
                                    "not match the signature you provided."})(
                environ, start_response)
        try:
            body = json.loads(raw, parse_float=Decimal)
        except ValueError:
            body = None
        with self._lock:
            if not isinstance(body, dict) or body.get("partnerId") != self.partner_id:
                answer = self._error(operation, "F200", "InvalidPartnerIdInput",
                                     "Partner Id can't be null or empty or is not yours")
            elif operation == "CreateGiftCard":
                answer = self._create(body)
            else:
                answer = self._cancel(body)
        if answer == "lost":  # the card is made; the answer never reaches the caller
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            return Response("", 200)(environ, start_response)
        if isinstance(answer, tuple):  # slow: outside the lock, so others are answered
            time.sleep(self.slow_seconds)
            answer = answer[1]
        return answer(environ, start_response)

    def _signed(self, request: Request, operation: str, raw: bytes) -> bool:
        presented = request.headers.get("Authorization", "")
        moment = request.headers.get("x-amz-date", "")
        if request.headers.get("x-amz-target") != TARGET + operation or not moment:
            return False
        try:
            when = dt.datetime.strptime(moment, "%Y%m%dT%H%M%SZ")
        except ValueError:
            return False
        expected = sign(self.secret_key, self.access_key, self.region, request.host,
                        request.path, TARGET + operation, raw, when)["authorization"]
        return secrets.compare_digest(presented, expected) and SERVICE in presented

    def _json(self, status: int, body: dict) -> Response:
        return Response(json.dumps(body), status, mimetype="application/json")

    def _error(self, operation: str, code: str, kind: str, message: str,
                status: str = "FAILURE") -> Response:
        """An error as Amazon gives it: every field of the inner response null but its
        status, beside errorCode, errorType and message."""
        return self._json(500 if code in ("F100", "F500") else 400, {
            "agcodResponse": {"__type": f"{operation}Response:http://internal.amazon.com/"
                                        "coral/com.amazonaws.agcod/",
                              "cardInfo": None, "creationRequestId": None,
                              "gcClaimCode": None, "gcExpirationDate": None, "gcId": None,
                              "status": status},
            "errorCode": code, "errorType": kind, "message": message})

    def _mock(self, operation: str, mock_id: str) -> Response:
        code, kind, message, status = MOCK_ERRORS[mock_id]
        return self._error(operation, code, kind, message, status)

    def _create(self, body: dict):
        request_id = body.get("creationRequestId")
        value = body.get("value") if isinstance(body.get("value"), dict) else {}
        amount = value.get("amount")
        if request_id in MOCK_ERRORS:
            return self._mock("CreateGiftCard", request_id)
        if request_id == MOCK_SUCCESS["creationRequestId"]:
            return self._json(200, self._card(request_id, {**MOCK_SUCCESS,
                                                           "code": MOCK_SUCCESS["gcClaimCode"],
                                                           "status": "Fulfilled"}))
        if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
            return self._error("CreateGiftCard", "F200", "InvalidRequestIdInput",
                               "creationRequestId must be 1 to 40 alphanumerics")
        if not request_id.startswith(self.partner_id):
            return self._error("CreateGiftCard", "F200", "RequestIdMustStartWithPartnerName",
                               "creationRequestId must start with the partner id")
        if value.get("currencyCode") != self.currency:
            return self._mock("CreateGiftCard", "F2016")
        if isinstance(amount, bool) or not isinstance(amount, (int, Decimal)):
            return self._mock("CreateGiftCard", "F2003")
        if amount <= 0:
            return self._mock("CreateGiftCard", "F2004")
        if amount % 1:
            return self._mock("CreateGiftCard", "F2017")
        trouble = self.scripted.get(request_id)
        if trouble and trouble[0] not in ("lost", "slow"):
            return self._mock("CreateGiftCard", SCRIPTED[trouble.pop(0)])
        self.creates += 1
        card = self.cards.get(request_id)
        if card is not None and card["amount"] != int(amount):
            return self._error("CreateGiftCard", "F200", "InvalidRequestInput",
                               "creationRequestId was used for another amount")
        if card is None:
            if self.funds < amount:
                return self._mock("CreateGiftCard", "F3003")
            self.funds -= int(amount)
            card = self._new_card(int(amount))
            self.cards[request_id] = card
        if trouble and trouble[0] == "lost":
            trouble.pop(0)
            return "lost"
        if trouble and trouble[0] == "slow":  # the card is made; the answer takes a while
            trouble.pop(0)
            return "slow", self._json(200, self._card(request_id, card))
        return self._json(200, self._card(request_id, card))

    @staticmethod
    def _new_card(amount: int) -> dict:
        """Shaped as the recorded JPY cards: a 4-6-4 claim code, a 16-digit gcId, an
        expiry ten years on at the end of the day in Japan."""
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        code = "-".join("".join(secrets.choice(letters) for _ in range(n)) for n in (4, 6, 4))
        expires = dt.datetime.now(dt.timezone.utc).date()
        expires = expires.replace(year=expires.year + 10, day=min(expires.day, 28))
        return {"amount": amount, "status": "Fulfilled", "code": code,
                "gcId": str(secrets.randbelow(10 ** 16)).zfill(16),
                "expires": f"{expires:%a %b %d} 14:59:59 UTC {expires:%Y}"}

    def _card(self, request_id: str, card: dict) -> dict:
        return {"cardInfo": {"cardNumber": None, "cardStatus": card["status"],
                             "expirationDate": None,
                             # A JSON number with a point, as Amazon writes it
                             # (1000.0); whole yen are exact in a double.
                             "value": {"amount": float(card["amount"]),
                                       "currencyCode": self.currency}},
                "creationRequestId": request_id, "gcClaimCode": card["code"],
                "gcExpirationDate": card.get("expires"), "gcId": card["gcId"],
                "status": "SUCCESS"}

    def _cancel(self, body: dict):
        request_id = body.get("creationRequestId")
        if request_id in MOCK_ERRORS:
            return self._mock("CancelGiftCard", request_id)
        card = self.cards.get(request_id)
        if card is None:
            # errorType as the Incenteev/async-amazon-incentives client names it
            # (CardNotFoundException); the message is ours.
            return self._error("CancelGiftCard", "F200", CARD_NOT_FOUND,
                               "no gift card was created for this creationRequestId")
        if card["status"] == "Fulfilled":
            card["status"] = "RefundedToPurchaser"
            self.funds += card["amount"]
        return self._json(200, {"creationRequestId": request_id, "gcId": card["gcId"],
                                "status": "SUCCESS"})


def serve(port: int = 0, *, host: str = "127.0.0.1", allow_public: bool = False,
          **config) -> SandboxServer:
    """Run a sandbox in a background thread; `config` takes AmazonSandbox's arguments.
    A `host` beyond loopback is refused (PublicBindRefused) unless `allow_public`."""
    return serve_in_thread(AmazonSandbox(**config), host, port, name="amazon-sandbox",
                           allow_public=allow_public)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.amazon",
                                     description="Local Amazon Incentives API sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--allow-public", action="store_true",
                        help="listen on a --host beyond loopback")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--partner-id", default="Sandb")
    args = parser.parse_args(argv)
    try:
        server = serve(args.port, host=args.host, allow_public=args.allow_public,
                       partner_id=args.partner_id)
    except PublicBindRefused as refused:
        parser.error(str(refused))
    print(f"Amazon Incentives sandbox on {server.base_url}", flush=True)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
