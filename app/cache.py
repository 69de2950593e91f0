"""Read-mostly store data cached per process, dropped when a store counter moves.

Writers bump a named counter in the same transaction as their change. This process drops its
cache at once when it makes a change itself (invalidate) and otherwise checks the counter at
most once a second, so a change made by another process is seen within a second.

A load races with changes: what it read may be stale by the time it returns. Each drop bumps a
generation, and a load keeps its value only if no drop happened while it ran, so a value read
before a change is never kept after it.
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
        self._generation = 0  # bumped by every drop: a load that spans one is not kept

    def invalidate(self) -> None:
        self._drop()
        self._checked_at = 0.0

    def _drop(self) -> None:
        self._values.clear()
        self._generation += 1

    async def get(self, key: K) -> V:
        if time.monotonic() - self._checked_at > CHECK_SECONDS:
            version = await self._counter()
            if version != self._version:
                self._drop()
                self._version = version
            self._checked_at = time.monotonic()
        if key in self._values:
            return self._values[key]
        generation = self._generation
        value = await self._load(key)
        if generation != self._generation:
            return value  # dropped while loading: good for this caller, too old to keep
        if len(self._values) >= self._max:
            self._values.clear()
        self._values[key] = value
        return value
