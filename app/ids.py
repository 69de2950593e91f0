"""Prefixed, time-ordered opaque ids (`evt_0196f3a2…`): sortable, so cursors are the last id.

48 bits of milliseconds then 80 random bits, in hex (32 characters), whose order is the order of
the bytes: ids minted later sort later. Ids are minted several times per accepted event, so the
random bits come from one os.urandom call per 400 ids rather than one each, and the encoding is
bytes.hex() (C) rather than a base32 loop in Python.
"""

from __future__ import annotations

import os
import threading
import time

_RANDOM_BYTES = 10
_POOL_BYTES = 4000
_pool = b""
_pos = _POOL_BYTES
_lock = threading.Lock()


def random_bytes(size: int = _RANDOM_BYTES) -> bytes:
    """Cryptographically random bytes from a pooled os.urandom read (size ≤ 64)."""
    global _pool, _pos
    with _lock:
        if _pos + size > _POOL_BYTES:
            _pool, _pos = os.urandom(_POOL_BYTES), 0
        chunk = _pool[_pos : _pos + size]
        _pos += size
        return chunk


def _encode(raw: bytes) -> str:
    return raw.hex()


def new_id(prefix: str, now_ms: int | None = None) -> str:
    millis = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return f"{prefix}_{_encode(millis.to_bytes(6, 'big') + random_bytes())}"


def id_time_ms(value: str) -> int:
    """The milliseconds an id was minted at."""
    return int(value.split("_", 1)[1][:12], 16)


def id_floor(prefix: str, millis: int) -> str:
    """The smallest id of that millisecond: `id >= id_floor(t)` means minted at or after t."""
    return f"{prefix}_{_encode(millis.to_bytes(6, 'big') + bytes(_RANDOM_BYTES))}"
