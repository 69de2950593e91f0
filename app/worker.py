"""The worker: claim due deliveries with a lease, send them, record the outcomes.

All pending work lives in the store (`next_attempt_at`); the worker only ever holds leased
copies, so killing it loses nothing: an expired lease makes a delivery claimable again.

Each turn of the loop is one transaction that records every attempt finished since the last
turn and claims as many due deliveries as there is room for; while it commits, more attempts
finish, so under load a turn serves hundreds of deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from app import metrics
from app.clock import Clock
from app.config import Settings
from app.delivery import Deliverer
from app.records import Finished, Job
from app.settle import settle
from app.store import Store

log = logging.getLogger("billhook.worker")

CLAIM_BATCH = 512
MIN_CLAIM = 32


class Worker:
    def __init__(
        self,
        store: Store,
        deliverer: Deliverer,
        clock: Clock,
        settings: Settings,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._deliverer = deliverer
        self._clock = clock
        self._schedule = settings.retry_schedule
        self._lease_ms = round(settings.lease_seconds * 1000)
        self._capacity = settings.worker_concurrency
        self._poll = settings.poll_interval
        self._grace = settings.shutdown_grace
        self._rng = rng or random.Random()
        self._sending: dict[asyncio.Task[None], Job] = {}
        self._results: list[Finished] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._backlog = False

    def notify(self) -> None:
        """New work was committed in this process: claim now rather than at the next poll."""
        self._wake.set()

    # -- driven mode: tests and tools --------------------------------------------------------

    async def run_once(self) -> int:
        """Claim what is due now, send it, record it. Returns how many were attempted."""
        jobs = await self._turn([], CLAIM_BATCH)
        if jobs:
            finished = await asyncio.gather(*(self._attempt(job) for job in jobs))
            await self._turn(list(finished), 0)
        return len(jobs)

    async def drain(self, max_rounds: int = 1000) -> int:
        """run_once until nothing is due (retries with a zero delay included)."""
        total = 0
        for _ in range(max_rounds):
            done = await self.run_once()
            if not done:
                return total
            total += done
        raise RuntimeError(f"still busy after {max_rounds} rounds")

    # -- service mode ------------------------------------------------------------------------

    async def run(self) -> None:
        """Until stop(): keep up to `worker_concurrency` attempts in flight."""
        try:
            while not self._stopping:
                want = self._room()
                finished, self._results = self._results, []
                if not finished and not want:
                    await self._sleep()
                    continue
                jobs = await self._turn(finished, want)
                self._start(jobs)
                self._backlog = bool(want) and len(jobs) == want
                if not self._backlog and not self._results:
                    await self._sleep()
        finally:
            await self._shutdown()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _room(self) -> int:
        """How many to claim: in chunks, not one row per completed attempt."""
        free = self._capacity - len(self._sending)
        if free < min(self._capacity, MIN_CLAIM) and self._sending:
            return 0
        return min(free, CLAIM_BATCH)

    def _start(self, jobs: list[Job]) -> None:
        for job in jobs:
            task = asyncio.create_task(self._send(job))
            self._sending[task] = job
            task.add_done_callback(self._sent)
        metrics.IN_FLIGHT.set(len(self._sending))

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll)
        self._wake.clear()

    async def _turn(self, finished: list[Finished], want: int) -> list[Job]:
        now = self._clock.now_ms()
        try:
            return await self._store.deliveries.turn(finished, now, now + self._lease_ms, want)
        except Exception:
            # Unrecorded attempts stay leased; they are sent again when the lease runs out.
            log.exception("recording %d attempts or claiming failed", len(finished))
            return []

    async def _attempt(self, job: Job) -> Finished:
        outcome = await self._deliverer.send(job.url, job.event_id, job.body, job.secrets)
        metrics.ATTEMPTS_BY_OUTCOME[outcome.error or "success"].inc()
        metrics.ATTEMPT_SECONDS.observe(outcome.duration_ms / 1000)
        return settle(job, outcome, self._schedule, rng=self._rng)

    async def _send(self, job: Job) -> None:
        finished = await self._attempt(job)
        # Not `self._results.append(await …)`: that binds the list before the await, and the
        # loop may have swapped it out meanwhile, losing the result.
        self._results.append(finished)
        self._wake.set()

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.pop(task, None)

    async def _shutdown(self) -> None:
        """Give in-flight attempts a grace period, hand the rest back, record everything."""
        if self._sending:
            _, late = await asyncio.wait(list(self._sending), timeout=self._grace)
            unsent = [self._sending[t] for t in late]
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._store.deliveries.release(unsent, self._clock.now_ms())
        finished, self._results = self._results, []
        await self._turn(finished, 0)
