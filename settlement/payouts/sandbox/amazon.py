"""A local Amazon Incentives API (AGCOD) sandbox: CreateGiftCard and CancelGiftCard as
Amazon documents them, for tests and the demo.

It checks what Amazon checks: the Signature Version 4 signature (with the key pair it is
given), `x-amz-target`, the partner id, a `creationRequestId` of at most 40 alphanumerics
that starts with the partner id, a positive whole amount in the configured currency, and
the pre-payment account's funds. A `creationRequestId` seen before is answered with the
card it already made (Amazon's retry rule); with another amount it is an F200 error.
Cancelled cards answer `cardStatus: RefundedToPurchaser`.

Scripted trouble for tests: `script(request_id, "F400")` answers that id's next create
with a retryable error (RESEND, no card made), `"F500"` likewise, `"F300"` with a FAILURE,
`"lost"` makes the card but drops the connection before answering, and `"slow"` makes it
and answers only after `slow_seconds` (a caller can be killed meanwhile).

Command line: ``python -m settlement.payouts.sandbox.amazon --port 8766``.
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

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from settlement.exchanges.amazon import SERVICE, TARGET, sign

ERRORS = {  # code: (HTTP status, status, errorType, message)
    "F200": (400, "FAILURE", "InvalidRequestInput", "the request is not valid"),
    "F300": (400, "FAILURE", "InsufficientFunds", "the pre-payment account is short"),
    "F400": (400, "RESEND", "SystemTemporarilyUnavailable", "try the same request again"),
    "F500": (500, "RESEND", "UnknownError", "unknown error"),
}
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
                answer = self._error("F200", operation, None, "partnerId or body is not valid")
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
        return Response(json.dumps(body, default=str), status, mimetype="application/json")

    def _error(self, code: str, operation: str, request_id: str | None,
               message: str | None = None) -> Response:
        http_status, status, kind, default = ERRORS[code]
        return self._json(http_status, {
            "agcodResponse": {"__type": f"{operation}Response:http://internal.amazon.com/"
                                        "coral/com.amazonaws.agcod/",
                              "creationRequestId": request_id, "status": status},
            "errorCode": code, "errorType": kind, "message": message or default})

    def _create(self, body: dict):
        request_id = body.get("creationRequestId")
        value = body.get("value") if isinstance(body.get("value"), dict) else {}
        amount = value.get("amount")
        if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id) \
                or not request_id.startswith(self.partner_id):
            return self._error("F200", "CreateGiftCard", None, "creationRequestId must be "
                               "at most 40 alphanumerics starting with the partner id")
        if value.get("currencyCode") != self.currency or isinstance(amount, bool) or \
                not isinstance(amount, (int, Decimal)) or amount <= 0 or amount % 1:
            return self._error("F200", "CreateGiftCard", request_id,
                               f"amount must be a positive whole {self.currency} amount")
        trouble = self.scripted.get(request_id)
        if trouble and trouble[0] not in ("lost", "slow"):
            return self._error(trouble.pop(0), "CreateGiftCard", request_id)
        self.creates += 1
        card = self.cards.get(request_id)
        if card is not None and card["amount"] != int(amount):
            return self._error("F200", "CreateGiftCard", request_id,
                               "creationRequestId was used for another amount")
        if card is None:
            if self.funds < amount:
                return self._error("F300", "CreateGiftCard", request_id)
            self.funds -= int(amount)
            card = {"amount": int(amount), "status": "Fulfilled",
                    "code": "-".join(secrets.token_hex(2).upper() for _ in range(3)),
                    "gcId": "A" + secrets.token_hex(6).upper()}
            self.cards[request_id] = card
        if trouble and trouble[0] == "lost":
            trouble.pop(0)
            return "lost"
        if trouble and trouble[0] == "slow":  # the card is made; the answer takes a while
            trouble.pop(0)
            return "slow", self._json(200, self._card(request_id, card))
        return self._json(200, self._card(request_id, card))

    def _card(self, request_id: str, card: dict) -> dict:
        return {"cardInfo": {"cardNumber": None, "cardStatus": card["status"],
                             "expirationDate": None,
                             "value": {"amount": Decimal(card["amount"]).quantize(
                                 Decimal("0.0")), "currencyCode": self.currency}},
                "creationRequestId": request_id, "gcClaimCode": card["code"],
                "gcExpirationDate": None, "gcId": card["gcId"], "status": "SUCCESS"}

    def _cancel(self, body: dict):
        request_id = body.get("creationRequestId")
        card = self.cards.get(request_id)
        if card is None:
            return self._error("F200", "CancelGiftCard", request_id,
                               "no gift card was created for this creationRequestId")
        if card["status"] == "Fulfilled":
            card["status"] = "RefundedToPurchaser"
            self.funds += card["amount"]
        return self._json(200, {"creationRequestId": request_id, "gcId": card["gcId"],
                                "status": "SUCCESS"})


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass


class SandboxServer:
    def __init__(self, sandbox: AmazonSandbox, httpd, thread: threading.Thread):
        self.sandbox, self.httpd, self.thread = sandbox, httpd, thread
        self.base_url = f"http://127.0.0.1:{httpd.server_port}"

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> "SandboxServer":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def serve(port: int = 0, **config) -> SandboxServer:
    """Run a sandbox in a background thread; `config` takes AmazonSandbox's arguments."""
    sandbox = AmazonSandbox(**config)
    httpd = make_server("127.0.0.1", port, sandbox, threaded=True,
                        request_handler=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, name="amazon-sandbox", daemon=True)
    thread.start()
    return SandboxServer(sandbox, httpd, thread)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m settlement.payouts.sandbox.amazon",
                                     description="Local Amazon Incentives API sandbox.")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--partner-id", default="Sandb")
    args = parser.parse_args(argv)
    server = serve(args.port, partner_id=args.partner_id)
    print(f"Amazon Incentives sandbox on {server.base_url}", flush=True)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
