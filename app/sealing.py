"""Secrets at rest, sealed with BILLHOOK_SECRET_KEY.

Endpoint signing secrets (and any credential billhook must send on) are kept encrypted in the
database with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`), under a key derived
from BILLHOOK_SECRET_KEY by HKDF; a copy of the database alone reveals none of them. The
variable may list several keys: the first seals, every one opens, so a key is rotated by
putting the new one first, restarting, and dropping the old one once `billhook secrets
reseal` (or any process's start) has sealed everything under the new one. Other keys the hub
needs (the console's form signatures) are derived from the same secret under their own label.
"""

from __future__ import annotations

import base64
import functools
import secrets
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "sealed:v1:"  # what a sealed value starts with; anything else is legacy plain text
MIN_KEY_LENGTH = 32


class SealError(ValueError):
    """A sealed value no key of BILLHOOK_SECRET_KEY opens (a key was dropped too early)."""


def derive(secret: str, label: str) -> bytes:
    """32 bytes for one purpose (`label`), from one configured secret."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode())
    return hkdf.derive(secret.encode())


def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive(secret, "billhook/secrets-at-rest")))


class Sealer:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key")
        self._first = _fernet(keys[0])
        self._all = MultiFernet([_fernet(k) for k in keys])
        self.primary = keys[0]

    def seal(self, plain: str) -> str:
        return PREFIX + self._first.encrypt(plain.encode()).decode()

    def open(self, stored: str) -> str:
        """The plain text of a stored value (a legacy unsealed one is returned as it is)."""
        return _open(self, stored)

    def stale(self, stored: str) -> bool:
        """True when `stored` is plain text or sealed under a key other than the first."""
        if not stored.startswith(PREFIX):
            return True
        try:
            self._first.decrypt(stored.removeprefix(PREFIX).encode())
        except InvalidToken:
            return True
        return False

    def key(self, label: str) -> bytes:
        """A key of the primary secret for another purpose (e.g. the console's forms)."""
        return derive(self.primary, label)


@functools.lru_cache(maxsize=65_536)
def _open(sealer: Sealer, stored: str) -> str:
    """Cached: a delivery's secret is opened once per process, not once per attempt
    (a Fernet check costs ~20 µs)."""
    if not stored.startswith(PREFIX):
        return stored
    try:
        return sealer._all.decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken as exc:
        raise SealError(
            "a stored secret opens with no key of BILLHOOK_SECRET_KEY: put back the key it "
            "was sealed with (after the new one) and restart"
        ) from exc


def new_key() -> str:
    """A fresh BILLHOOK_SECRET_KEY (256 random bits)."""
    return "bsk_" + secrets.token_urlsafe(32)
