"""Read-mostly store data cached per process, dropped when a store counter moves.

Writers bump a named counter in the same transaction as their change. This process drops its
cache at once when it makes a change itself (invalidate) and otherwise checks the counter at
most once a second, so a change made by another process is seen within a second.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

CHECK_SECONDS = 1.0


class CounterCache(Generic[K, V]):
    def __init__(
        self,
        counter: Callable[[], Awaitable[int]],
        load: Callable[[K], Awaitable[V]],
        max_entries: int = 10_000,
    ) -> None:
        self._counter = counter
        self._load = load
        self._max = max_entries
        self._values: dict[K, V] = {}
        self._version = -1
        self._checked_at = 0.0

    def invalidate(self) -> None:
        self._values.clear()
        self._checked_at = 0.0

    async def get(self, key: K) -> V:
        if time.monotonic() - self._checked_at > CHECK_SECONDS:
            version = await self._counter()
            if version != self._version:
                self._values.clear()
                self._version = version
            self._checked_at = time.monotonic()
        if key in self._values:
            return self._values[key]
        value = await self._load(key)
        if len(self._values) >= self._max:
            self._values.clear()
        self._values[key] = value
        return value
