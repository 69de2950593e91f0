"""Failures counted per key in a sliding window: past the limit, callers wait.

In memory, per process (N processes allow N times as many): enough to make online guessing
of a console sign-in pointless, without a write to the store per attempt.
"""

from __future__ import annotations

from collections import deque

MAX_KEYS = 10_000  # beyond this many clients being counted, the oldest are forgotten


class Throttle:
    def __init__(self, limit: int, window_ms: int) -> None:
        self._limit = limit
        self._window = window_ms
        self._failures: dict[str, deque[int]] = {}

    def fail(self, key: str, now: int) -> None:
        if key not in self._failures and len(self._failures) >= MAX_KEYS:
            self._failures.pop(next(iter(self._failures)))
        times = self._failures.setdefault(key, deque())
        times.append(now)
        while len(times) > self._limit:
            times.popleft()

    def wait(self, key: str, now: int) -> int:
        """Milliseconds until `key` may try again (0: now)."""
        times = self._failures.get(key)
        if times is None:
            return 0
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        return times[0] + self._window - now if len(times) >= self._limit else 0
