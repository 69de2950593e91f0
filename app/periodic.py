"""Timed work in the worker process: everything that is due by the clock rather than by an
event — subscription cycles, automatic finalization, replay jobs, endpoint probes, retention
(the list is wired in app/hub.py).

Each job claims its due rows from the store, so several worker processes can run it safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

log = logging.getLogger("billhook.periodic")

Job = tuple[str, Callable[[], Awaitable[int]]]


class Periodic:
    def __init__(self, jobs: Sequence[Job], interval_s: float) -> None:
        self._jobs = list(jobs)
        self._interval = interval_s
        self._stop = asyncio.Event()

    async def run_once(self) -> dict[str, int]:
        """Each job once; how much each did. A failing job is logged, not fatal to the rest."""
        done: dict[str, int] = {}
        for name, job in self._jobs:
            try:
                done[name] = await job()
            except Exception:
                log.exception("periodic job %s failed", name)
                done[name] = 0
        return done

    async def run(self) -> None:
        while not self._stop.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)

    def stop(self) -> None:
        self._stop.set()
