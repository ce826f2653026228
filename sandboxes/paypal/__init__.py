"""A local PayPal Payouts (batch) sandbox: a WSGI app that speaks PayPal's HTTP protocol.

It replaces PayPal only at the network edge, for the PayPal adapter's tests, fault-injection
tests and the demo. It is a test/demo tool: settlement's domain code never imports it.

What it does, in PayPal's own words where the OpenAPI document
(``sandboxes/specs/paypal/payments_payouts_batch_v1.json``) has them:

* ``POST /v1/oauth2/token``: client credentials (HTTP basic auth with the configured client
  id and secret, form body ``grant_type=client_credentials``) give a bearer token. Tokens
  expire by the sandbox clock, so ``/_sandbox/advance`` past their lifetime expires them.
* ``POST /v1/payments/payouts``: every body is validated against the document's request
  schema (``create_payout_request``, $refs resolved, JSON Schema draft 4 semantics, OpenAPI
  ``nullable`` honoured), plus the checks PayPal makes that the document leaves out: the
  recipient type is one of the document's ``recipient_enum``, the receiver matches its type,
  the amount is a positive plain decimal with at most the currency's minor digits, the
  currency is one PayPal pays out in. Any violation refuses the WHOLE batch with
  ``400 VALIDATION_ERROR`` and ``details: [{field, location, issue}]``, the field named the
  way PayPal names it (``items[1].receiver``). A ``sender_batch_id`` used within 30 days is
  refused with ``400 USER_BUSINESS_ERROR`` as PayPal refuses it: the detail (field
  ``SENDER_BATCH_ID``) carries a ``link`` list with the original batch (rel ``self``, GET)
  and the top-level ``links`` is empty. More than 15,000 items is a
  ``VALIDATION_ERROR``. A ``PayPal-Request-Id`` header seen within 30 days replays the
  stored answer of that request. Success is ``201`` with ``batch_header`` and ``links``.
* ``GET /v1/payments/payouts/{payout_batch_id}`` (``page``, ``page_size``,
  ``total_required``, ``fields``), ``GET /v1/payments/payouts-item/{payout_item_id}`` and
  ``POST /v1/payments/payouts-item/{payout_item_id}/cancel`` (UNCLAIMED -> RETURNED).

Item outcomes are scripted by the receiver, so tests can choose them: the part before ``@``
(or the whole receiver for PHONE and PAYPAL_ID) ending in ``+fail`` -> FAILED,
``+unclaimed`` -> UNCLAIMED, ``+returned`` -> RETURNED, ``+onhold`` -> ONHOLD,
``+blocked`` -> BLOCKED, ``+pending`` -> stays PENDING; anything else -> SUCCESS.

A batch is PENDING when created. Every GET of the batch or of one of its items is one poll;
each ``polls_per_step`` polls (default 1) move it one step: PENDING -> PROCESSING ->
SUCCESS, and at SUCCESS its items take their scripted outcomes (``polls_per_step=0``
completes a batch at its first poll). An UNCLAIMED item turns RETURNED 30 days (sandbox
clock) after it became UNCLAIMED.

Sandbox control API (not PayPal's; no authentication), under ``/_sandbox``:

* ``POST /_sandbox/faults`` ``{"next": [{"kind": K, "count": n, "on": OP, "seconds": s}]}``
  queues faults for the next requests of operation OP (``create`` by default; ``token``,
  ``get``, ``cancel`` or ``any``). Kinds that strike before anything is recorded:
  ``http_500``, ``http_503``, ``drop_connection`` (the socket is closed without an answer),
  ``delay`` (sleeps ``seconds`` then answers normally). Kinds for ``create`` that strike
  after the batch is accepted and recorded (a refused request does not use them up):
  ``timeout_after_accept`` (records, then sleeps ``seconds``, default
  ``timeout_after_accept_seconds``, before answering, so a client with a shorter timeout
  never learns the outcome), ``http_500_after_accept``, ``drop_connection_after_accept``,
  ``deny_batch`` (the batch is DENIED: nothing is paid, its items are FAILED with
  INSUFFICIENT_FUNDS). For one operation the queue is consumed in order.
  ``GET /_sandbox/faults`` shows the queue and the faults applied so far.
* ``POST /_sandbox/reset``: forget batches, faults, events and the clock offset (issued
  tokens stay valid).
* ``GET /_sandbox/batches`` (``?sender_batch_id=``): every batch and item as recorded.
* ``POST /_sandbox/advance`` ``{"days": 31, "seconds": 0}``: move the sandbox clock.
* ``GET /_sandbox/events``: the webhook events emitted, with their delivery result.
* ``POST /_sandbox/items/{payout_item_id}`` ``{"transaction_status": S}``: what PayPal does
  to an item later: a SUCCESS item becomes REFUNDED, REVERSED or BLOCKED, an UNCLAIMED one
  RETURNED or SUCCESS (claimed).
* ``GET|POST /_sandbox/config``: read or change ``polls_per_step``,
  ``timeout_after_accept_seconds``, ``webhook_url``, ``webhook_timeout_seconds``,
  ``token_ttl_seconds``.
* ``GET /_sandbox/webhook-cert.pem``: the certificate the webhook events are signed with.

Webhooks: each event is signed as PayPal signs them (PAYPAL-TRANSMISSION-SIG over
``id|time|webhook_id|crc32(body)``, SHA256withRSA, PAYPAL-CERT-URL naming the certificate
above; the key is made when first needed). With ``webhook_url`` configured, the item
events PAYMENT.PAYOUTS-ITEM.SUCCEEDED, .FAILED, .UNCLAIMED, .RETURNED, .HELD, .BLOCKED (and
PAYMENT.PAYOUTSBATCH.SUCCESS / .DENIED) are POSTed synchronously, best effort, when the
state changes (on a poll, a cancel or an advance), as
``{id, event_type, resource_type, create_time, summary, resource}``.

Run it with ``serve(...)`` from a test (background thread) or standalone:
``python -m sandboxes.paypal --port 8765``. It listens on loopback only, unless asked with
``allow_public=True`` / ``--allow-public`` (the control API has no authentication).

State lives in memory behind one lock. Amounts stay decimal strings; totals are computed
with Decimal, never float.

Where things are: ``app`` (the WSGI application: PayPal's endpoints, batch progress,
webhooks), ``control`` (the ``/_sandbox`` API), ``spec`` (the OpenAPI document and its
validation errors), ``rules`` (PayPal's limits and the sandbox's scripts), ``state`` (settings
and records), ``wire`` (JSON, PayPal's error shape, ids), ``server`` (``serve``, the command
line, loopback only unless ``allow_public``/``--allow-public``).
"""
from sandboxes.paypal.app import PayPalSandbox
from sandboxes.paypal.server import SandboxServer, serve
from sandboxes.paypal.spec import SPEC_PATH, load_document
from sandboxes.paypal.state import SandboxConfig

__all__ = ["SPEC_PATH", "PayPalSandbox", "SandboxConfig", "SandboxServer", "load_document", "serve"]
