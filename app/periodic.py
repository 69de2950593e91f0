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
from dataclasses import dataclass

from app.clock import Clock

log = logging.getLogger("billhook.periodic")

Claim = Callable[[str, int, int], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Job:
    """`every_ms`: runs at most that often across all workers (one of them runs it, through a
    lease in the store); None: every turn of every worker (the job claims its own rows)."""

    name: str
    run: Callable[[], Awaitable[int]]
    every_ms: int | None = None


class Periodic:
    def __init__(self, jobs: Sequence[Job], interval_s: float, clock: Clock, claim: Claim) -> None:
        self._jobs = list(jobs)
        self._interval = interval_s
        self._clock = clock
        self._claim = claim
        self._stop = asyncio.Event()

    async def run_once(self) -> dict[str, int]:
        """Each job that is due, once; what each that ran did (a job leased to another worker
        is absent). A failing job is logged, not fatal to the rest."""
        done: dict[str, int] = {}
        for job in self._jobs:
            try:
                if job.every_ms is not None and not await self._claim(
                    job.name, self._clock.now_ms(), job.every_ms
                ):
                    continue
                done[job.name] = await job.run()
            except Exception:
                log.exception("periodic job failed", extra={"job": job.name})
                done[job.name] = 0
        return done

    async def run(self) -> None:
        while not self._stop.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)

    def stop(self) -> None:
        self._stop.set()
