"""PayPal webhook signatures, verified as PayPal documents them ("Verify the signature
yourself", certificate-based): PayPal signs `<transmission id>|<transmission time>|<webhook
id>|<CRC32 of the body, decimal>` with SHA256withRSA, and sends the signature, the
algorithm and the URL of its certificate in the PAYPAL-* headers. The certificate is only
fetched from PayPal's own hosts (or the configured PayPal base URL, the local sandbox),
so a forger cannot bring a certificate of his own.

`Signer` is the sending side, used by the local sandbox.
"""
from __future__ import annotations

import base64
import datetime as dt
import threading
import time
import urllib.request
import zlib
from dataclasses import dataclass
from typing import Callable, Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ALGORITHM = "SHA256withRSA"
PAYPAL_CERT_PREFIXES = tuple(f"https://{host}/v1/notifications/certs/" for host in (
    "api.paypal.com", "api-m.paypal.com", "api.sandbox.paypal.com", "api-m.sandbox.paypal.com"))
MAX_CERT_BYTES = 16 * 1024
# URLs already fetched, good or bad (a failure for a while: PayPal may have been down), so
# that a forger naming the same URL again does not make us fetch it again.
MAX_REMEMBERED_URLS = 1024
FAILURE_REMEMBERED_SECONDS = 300.0
HEADERS = ("PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG",
           "PAYPAL-CERT-URL", "PAYPAL-AUTH-ALGO")


class SignatureRefused(Exception):
    """Why an event is not PayPal's (for the log and the refusal's detail)."""


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str,
                   body: bytes) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


class CertificateStore:
    """PayPal's signing certificates by URL, fetched once from a trusted prefix."""

    def __init__(self, prefixes: tuple[str, ...], timeout: float = 5.0):
        self.prefixes = prefixes
        self.timeout = timeout
        self._certs: dict[str, x509.Certificate | tuple[SignatureRefused, float]] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> x509.Certificate:
        if not url.startswith(self.prefixes) or ".." in url or "@" in url:
            raise SignatureRefused(f"the certificate URL is not PayPal's: {url[:200]!r}")
        with self._lock:
            cert = self._certs.get(url)
        if isinstance(cert, tuple) and cert[1] < time.monotonic():
            cert = None  # a failure long enough ago: try again
        if cert is None:
            try:
                cert = self._fetch(url)
            except SignatureRefused as exc:
                cert = (exc, time.monotonic() + FAILURE_REMEMBERED_SECONDS)
            with self._lock:
                if len(self._certs) >= MAX_REMEMBERED_URLS:
                    self._certs.pop(next(iter(self._certs)))  # the oldest
                self._certs[url] = cert
        if isinstance(cert, tuple):
            raise cert[0]
        return cert

    def _fetch(self, url: str) -> x509.Certificate:
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310
                pem = response.read(MAX_CERT_BYTES + 1)
        except OSError as exc:
            raise SignatureRefused(f"the certificate could not be fetched: {exc}") from None
        if len(pem) > MAX_CERT_BYTES:
            raise SignatureRefused("the certificate is too large")
        try:
            return x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise SignatureRefused("the certificate is not a PEM X.509 certificate") from None


def verify(headers: Mapping[str, str], body: bytes, webhook_id: str,
           certificate: Callable[[str], x509.Certificate]) -> None:
    """Raise SignatureRefused unless the headers carry PayPal's valid signature of `body`
    for our `webhook_id`."""
    values = {name: headers.get(name) for name in HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise SignatureRefused(f"missing {', '.join(missing)}")
    if values["PAYPAL-AUTH-ALGO"] != ALGORITHM:
        raise SignatureRefused(f"PAYPAL-AUTH-ALGO must be {ALGORITHM}")
    try:
        signature = base64.b64decode(values["PAYPAL-TRANSMISSION-SIG"], validate=True)
    except ValueError:
        raise SignatureRefused("PAYPAL-TRANSMISSION-SIG is not base64") from None
    cert = certificate(values["PAYPAL-CERT-URL"])
    now = dt.datetime.now(dt.timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SignatureRefused("the certificate has expired or is not valid yet")
    message = signed_message(values["PAYPAL-TRANSMISSION-ID"],
                             values["PAYPAL-TRANSMISSION-TIME"], webhook_id, body)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureRefused("the certificate's key is not RSA")
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureRefused("the signature does not match the body") from None


@dataclass
class Signer:
    """A signing key and its self-signed certificate (the local sandbox's identity)."""

    key: rsa.RSAPrivateKey
    certificate_pem: bytes

    @classmethod
    def generate(cls, common_name: str = "paypal-sandbox.local") -> "Signer":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=365))
                .sign(key, hashes.SHA256()))
        return cls(key, cert.public_bytes(serialization.Encoding.PEM))

    def headers(self, body: bytes, webhook_id: str, transmission_id: str,
                transmission_time: str, cert_url: str) -> dict[str, str]:
        message = signed_message(transmission_id, transmission_time, webhook_id, body)
        signature = self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {"PAYPAL-TRANSMISSION-ID": transmission_id,
                "PAYPAL-TRANSMISSION-TIME": transmission_time,
                "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
                "PAYPAL-CERT-URL": cert_url, "PAYPAL-AUTH-ALGO": ALGORITHM}
