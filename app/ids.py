"""Prefixed, time-ordered opaque ids (`evt_01JD…`): sortable, so cursors are just the last id."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_RANDOM_BITS = 80


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """48 bits of milliseconds then 80 random bits, like a ULID: 26 characters after the prefix."""
    millis = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return f"{prefix}_{_encode((millis << _RANDOM_BITS) | secrets.randbits(_RANDOM_BITS), 26)}"


def id_time_ms(value: str) -> int:
    """The milliseconds an id was minted at (used to turn `since` into an id range)."""
    body = value.split("_", 1)[1]
    number = 0
    for char in body:
        number = number * 32 + _ALPHABET.index(char)
    return number >> _RANDOM_BITS


def id_floor(prefix: str, millis: int) -> str:
    """The smallest id of that millisecond: `id >= id_floor(t)` means minted at or after t."""
    return f"{prefix}_{_encode(millis << _RANDOM_BITS, 26)}"
