"""Amazon Incentives API (AGCOD) client: CreateGiftCard and CancelGiftCard.

As Amazon documents it: a signed (AWS Signature Version 4, service `AGCODService`) JSON
POST to `/CreateGiftCard` or `/CancelGiftCard` with `x-amz-target:
com.amazonaws.agcod.AGCODService.<Operation>`. A create carries a `creationRequestId`
(alphanumeric, at most 40 characters, starting with the partner id) that must be new for
each card and the SAME for a retry: Amazon answers a retried id with the card it already
made, which is what makes our retries exactly-once. Answers carry `status` SUCCESS,
FAILURE or RESEND; errors carry `errorCode` F100 (Amazon internal), F2xx (our request),
F3xx (our account), F400 (temporary: retry the same request), F500 (unknown), with
`errorType` and `message`, beside an `agcodResponse` whose fields are all null but
`status` (FAILURE, RESEND for F400), as Amazon's sandbox answers its mock request ids
(recorded in gullevek/amazon-incentives' notes, replayed in
tests/exchanges/test_amazon_recorded.py). Amounts arrive as JSON numbers
(`"amount": 500.0`): they are read as Decimal and must be whole yen. A card is only a card
if its `cardStatus` is `Fulfilled`: a creationRequestId asked again after a cancel answers
SUCCESS with the same claim code and `RefundedToPurchaser` (recorded too).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal

SERVICE = "AGCODService"
TARGET = "com.amazonaws.agcod.AGCODService."
SUCCESS, FAILURE, RESEND = "SUCCESS", "FAILURE", "RESEND"
FULFILLED = "Fulfilled"
CARD_NOT_FOUND = "CardNotFound"  # CancelGiftCard for an id Amazon made no card for


@dataclass(frozen=True)
class GiftCardAnswer:
    status: str  # SUCCESS, FAILURE or RESEND (RESEND too when no answer came back)
    claim_code: str | None = None
    gc_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    card_status: str | None = None
    error_code: str | None = None
    error_type: str | None = None
    message: str | None = None

    @property
    def reason(self) -> str:
        return f"{self.error_code or self.status} {self.error_type or ''}: {self.message or ''}"


def creation_request_id(partner_id: str, tenant_id: int, exchange_id: int) -> str:
    """One per exchange, stable across retries: Amazon answers a repeat with the same card."""
    return f"{partner_id}T{tenant_id}E{exchange_id}"


def _whole(amount) -> int | None:
    if amount is None:
        return None
    value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    if value != value.to_integral_value():
        raise ValueError(f"amount {amount} is not whole yen")
    return int(value)


def read_answer(status_code: int, raw: bytes) -> GiftCardAnswer:
    """An AGCOD answer (success or error document) as a GiftCardAnswer."""
    try:
        body = json.loads(raw, parse_float=Decimal) if raw else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return GiftCardAnswer(RESEND, message=f"HTTP {status_code}: unreadable answer")
    inner = body.get("agcodResponse") if isinstance(body.get("agcodResponse"), dict) else body
    code = body.get("errorCode")
    status = inner.get("status") or body.get("status")
    if code or status not in (SUCCESS, FAILURE, RESEND):
        # The error's class decides, not its status: Amazon answers F100 and F500 with
        # status FAILURE (recorded), yet neither says whether a card was made, and asking
        # again with the same creationRequestId is what Amazon's retry rule makes safe.
        # Only F2xx (our request) and F3xx (our account) are refusals; F400, a throttle or
        # an answer without a code is asked again.
        status = FAILURE if isinstance(code, str) and code[:2] in ("F2", "F3") else RESEND
    if status == SUCCESS and status_code >= 300:
        status = RESEND  # a contradictory answer is no verdict
    card = inner.get("cardInfo") if isinstance(inner.get("cardInfo"), dict) else {}
    value = card.get("value") if isinstance(card.get("value"), dict) else {}
    return GiftCardAnswer(
        status=status, claim_code=inner.get("gcClaimCode"), gc_id=inner.get("gcId"),
        amount=_whole(value.get("amount")), currency=value.get("currencyCode"),
        card_status=card.get("cardStatus"), error_code=code, error_type=body.get("errorType"),
        message=body.get("message") or (None if status == SUCCESS else f"HTTP {status_code}"))


def sign(secret_key: str, access_key: str, region: str, host: str, path: str, target: str,
         body: bytes, moment: dt.datetime) -> dict[str, str]:
    """The headers of a Signature Version 4 request (what Amazon verifies)."""
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {"accept": "application/json", "content-type": "application/json",
               "host": host, "x-amz-date": amz_date, "x-amz-target": target}
    names = ";".join(sorted(headers))
    canonical = "\n".join(["POST", path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)),
                           "", names, hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/{SERVICE}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                                f"SignedHeaders={names}, Signature={signature}")
    return headers


class IncentivesClient:
    def __init__(self, base_url: str, partner_id: str, access_key: str, secret_key: str,
                 region: str, timeout: float = 10.0):
        parsed = urllib.parse.urlsplit(base_url)
        self.scheme, self.host = parsed.scheme, parsed.netloc
        self.partner_id, self.access_key, self.secret_key = partner_id, access_key, secret_key
        self.region, self.timeout = region, timeout

    @classmethod
    def from_settings(cls, settings) -> "IncentivesClient":
        return cls(settings.amazon_base_url, settings.amazon_partner_id,
                   settings.amazon_access_key, settings.amazon_secret_key,
                   settings.amazon_region, settings.amazon_timeout_seconds)

    def create(self, request_id: str, amount: int, currency: str) -> GiftCardAnswer:
        return self._call("CreateGiftCard", {
            "creationRequestId": request_id, "partnerId": self.partner_id,
            "value": {"currencyCode": currency, "amount": amount}})

    def cancel(self, request_id: str, gc_id: str | None = None) -> GiftCardAnswer:
        body = {"creationRequestId": request_id, "partnerId": self.partner_id}
        if gc_id:
            body["gcId"] = gc_id
        return self._call("CancelGiftCard", body)

    def _call(self, operation: str, payload: dict) -> GiftCardAnswer:
        body = json.dumps(payload, separators=(",", ":")).encode()
        path = f"/{operation}"
        headers = sign(self.secret_key, self.access_key, self.region, self.host, path,
                       TARGET + operation, body, dt.datetime.now(dt.timezone.utc))
        conn_class = http.client.HTTPSConnection if self.scheme == "https" \
            else http.client.HTTPConnection
        conn = conn_class(self.host, timeout=self.timeout)
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            return read_answer(response.status, response.read())
        except (OSError, http.client.HTTPException) as exc:
            # Sent or not, we cannot tell: the same creationRequestId again settles it.
            return GiftCardAnswer(RESEND, message=f"no answer: {exc.__class__.__name__}")
        finally:
            conn.close()
