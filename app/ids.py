"""Prefixed, time-ordered opaque ids (`evt_0196f3a2…`): sortable, so cursors are the last id.

48 bits of milliseconds then 80 random bits, in hex (32 characters), whose order is the order of
the bytes. Within one process ids minted later sort later even inside one millisecond: as in
ULID's monotonic mode, a second id of the same millisecond takes the previous random part plus a
small random step, so listings ordered by id are in minting order and cursors never skip. Ids
are minted several times per accepted event, so the random bits come from one os.urandom call
per 400 ids rather than one each, and the encoding is bytes.hex() (C) rather than a base32 loop.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict

_RANDOM_BYTES = 10
_POOL_BYTES = 4000
_pool = b""
_pos = _POOL_BYTES
_lock = threading.Lock()
_RECENT = 64  # milliseconds remembered: ids are minted for "now" and a few stored moments
_recent: OrderedDict[int, int] = OrderedDict()


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
    return f"{prefix}_{_encode(millis.to_bytes(6, 'big') + _random_part(millis))}"


def _random_part(millis: int) -> bytes:
    """A fresh 79-bit value for a new millisecond (the top bit clear leaves 2**63 steps of
    room), else the last one of that millisecond plus a small random step."""
    fresh = int.from_bytes(random_bytes(), "big")
    with _lock:
        last = _recent.get(millis)
        value = fresh >> 1 if last is None else last + 1 + (fresh & 0xFFFF)
        _recent[millis] = value
        _recent.move_to_end(millis)
        if len(_recent) > _RECENT:
            _recent.popitem(last=False)
    return value.to_bytes(_RANDOM_BYTES, "big")


def id_time_ms(value: str) -> int:
    """The milliseconds an id was minted at."""
    return int(value.split("_", 1)[1][:12], 16)


def id_ceiling(prefix: str) -> str:
    """Greater than every id of that prefix: a keyset page's upper bound when there is no
    cursor. A bound that is always there lets the index seek to it; `cursor IS NULL OR id <
    cursor` cannot, and page N would read N pages' rows."""
    return f"{prefix}_{_encode(bytes([255]) * (6 + _RANDOM_BYTES))}"


def id_floor(prefix: str, millis: int) -> str:
    """The smallest id of that millisecond: `id >= id_floor(t)` means minted at or after t."""
    return f"{prefix}_{_encode(millis.to_bytes(6, 'big') + bytes(_RANDOM_BYTES))}"
