"""Standard Webhooks signatures: v1,<base64 HMAC-SHA256(secret, "id.timestamp.body")>."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from functools import lru_cache

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@lru_cache(maxsize=4096)
def secret_key(secret: str) -> bytes:
    """Decoded once per secret: this runs for every attempt on the hot path."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


@lru_cache(maxsize=4096)
def _keyed(secret: str) -> hmac.HMAC:
    """The HMAC state after the key: copying it skips re-keying on every attempt."""
    return hmac.new(secret_key(secret), digestmod=hashlib.sha256)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = _keyed(secret).copy()
    mac.update(b"%s.%d." % (msg_id.encode(), timestamp))
    mac.update(body)  # not concatenated: the body is not copied
    return "v1," + base64.b64encode(mac.digest()).decode()


def signature_header(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature per live secret, space-separated, so a rotation never breaks a receiver."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split(" "))
