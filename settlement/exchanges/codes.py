"""Gift codes at rest: AES-256-GCM, bound to the tenant and exchange they belong to (the
associated data), so a ciphertext copied to another row does not open."""
from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from settlement.config import Settings

NONCE = 12


def code_key(settings: Settings) -> bytes:
    if settings.gift_code_key:
        key = base64.urlsafe_b64decode(settings.gift_code_key.encode() + b"==")
        if len(key) != 32:
            raise ValueError("SETTLE_GIFT_CODE_KEY must be 32 bytes in urlsafe base64")
        return key
    path = Path(settings.outbox_dir) / ".gift-code-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name, then linked: a second process making it at
        # the same moment reads the first one's key, never a half-written file.
        tmp = path.with_name(f".gift-code-key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(base64.urlsafe_b64encode(secrets.token_bytes(32)))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return base64.urlsafe_b64decode(path.read_bytes().strip() + b"==")


def _bound(tenant_id: int, exchange_id: int) -> bytes:
    return f"gift-code:{tenant_id}:{exchange_id}".encode()


def seal(key: bytes, tenant_id: int, exchange_id: int, code: str) -> bytes:
    nonce = secrets.token_bytes(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, code.encode(), _bound(tenant_id, exchange_id))


def unseal(key: bytes, tenant_id: int, exchange_id: int, sealed: bytes) -> str:
    return AESGCM(key).decrypt(sealed[:NONCE], sealed[NONCE:],
                               _bound(tenant_id, exchange_id)).decode()
