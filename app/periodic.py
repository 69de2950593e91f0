"""Timed work in the worker process: everything that is due by the clock rather than by an
event — subscription cycles, automatic finalization, replay jobs, endpoint probes, retention
(the list is wired in app/hub.py).

Each job claims its due rows from the store, so several worker processes can run it safely.
A job that runs at most every so often is leased first (one worker runs it) and marked done
only when it succeeded: a failure makes it due again after RETRY_MS, not at the next slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.clock import Clock

log = logging.getLogger("billhook.periodic")

LEASE_MS = 10 * 60_000  # longer than any job runs: a worker that dies mid-job frees it then
RETRY_MS = 10_000  # a failed job is due again this soon


class Leases(Protocol):
    async def claim(self, name: str, now: int, lease_ms: int) -> bool: ...
    async def due_at(self, name: str, when: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Job:
    """`every_ms`: runs at most that often across all workers (one of them runs it, through a
    lease in the store); None: every turn of every worker (the job claims its own rows)."""

    name: str
    run: Callable[[], Awaitable[int]]
    every_ms: int | None = None


class Periodic:
    def __init__(
        self, jobs: Sequence[Job], interval_s: float, clock: Clock, leases: Leases
    ) -> None:
        self._jobs = list(jobs)
        self._interval = interval_s
        self._clock = clock
        self._leases = leases
        self._stop = asyncio.Event()

    async def run_once(self) -> dict[str, int]:
        """Each job that is due, once; what each that ran did (a job leased to another worker
        is absent). A failing job is logged, not fatal to the rest."""
        done: dict[str, int] = {}
        for job in self._jobs:
            try:
                ran = await self._run(job)
            except Exception:
                log.exception("periodic job failed", extra={"job": job.name})
                done[job.name] = 0
                continue
            if ran is not None:
                done[job.name] = ran
        return done

    async def all_due(self) -> None:
        """Every timed job due now: for a clock that moved backwards (tests that replay
        sequences at dates of their own), which would otherwise wait for the old due time."""
        for job in self._jobs:
            if job.every_ms is not None:
                await self._leases.due_at(job.name, self._clock.now_ms())

    async def _run(self, job: Job) -> int | None:
        """The job's count, or None when another worker holds it or it is not due."""
        if job.every_ms is None:
            return await job.run()
        started = self._clock.now_ms()
        if not await self._leases.claim(job.name, started, LEASE_MS):
            return None
        try:
            count = await job.run()
        except Exception:
            await self._leases.due_at(job.name, self._clock.now_ms() + RETRY_MS)
            raise
        await self._leases.due_at(job.name, started + job.every_ms)
        return count

    async def run(self) -> None:
        while not self._stop.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)

    def stop(self) -> None:
        self._stop.set()
