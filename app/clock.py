"""Time as a dependency: services and the worker ask a Clock, so tests can freeze it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


def to_rfc3339(millis: int | None) -> str | None:
    """Unix milliseconds → '2026-11-21T09:30:00.123Z' (None stays None)."""
    if millis is None:
        return None
    seconds, rest = divmod(millis, 1000)
    return f"{_second(seconds)}.{rest:03d}Z"


@lru_cache(maxsize=64)
def _second(seconds: int) -> str:
    """Formatted once per second: every answer of the accept path carries a timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def from_datetime(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
