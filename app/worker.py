"""The worker: claim due deliveries with a lease, send them, record the outcomes in batches.

All pending work lives in the store (`next_attempt_at`); the worker only ever holds leased
copies, so killing it loses nothing: an expired lease makes a delivery claimable again.
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
        self._results_ready = asyncio.Event()
        self._stopping = False
        self._backlog = False

    def notify(self) -> None:
        """New work was committed in this process: claim now rather than at the next poll."""
        self._wake.set()

    # -- driven mode: tests and `billhook worker --once` ------------------------------------

    async def run_once(self) -> int:
        """Claim what is due now, send it, record it. Returns how many were attempted."""
        jobs = await self._claim(CLAIM_BATCH)
        if jobs:
            finished = await asyncio.gather(*(self._attempt(job) for job in jobs))
            await self._store.deliveries.record(finished, self._clock.now_ms())
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
        recorder = asyncio.create_task(self._record_loop(), name="worker-recorder")
        try:
            while not self._stopping:
                free = self._capacity - len(self._sending)
                if free < min(self._capacity, MIN_CLAIM) and self._sending:
                    await self._sleep()  # claim in chunks, not one row per completion
                    continue
                limit = min(free, CLAIM_BATCH)
                jobs = await self._claim(limit)
                self._backlog = len(jobs) == limit
                for job in jobs:
                    task = asyncio.create_task(self._send(job))
                    self._sending[task] = job
                    task.add_done_callback(self._sent)
                metrics.IN_FLIGHT.set(len(self._sending))
                if not self._backlog:
                    await self._sleep()
        finally:
            await self._shutdown(recorder)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll)
        self._wake.clear()

    async def _claim(self, limit: int) -> list[Job]:
        now = self._clock.now_ms()
        try:
            return await self._store.deliveries.claim(now, now + self._lease_ms, limit)
        except Exception:
            log.exception("claiming deliveries failed; retrying at the next poll")
            return []

    async def _attempt(self, job: Job) -> Finished:
        outcome = await self._deliverer.send(job.url, job.event_id, job.body, job.secrets)
        metrics.ATTEMPTS.labels(outcome.error or "success").inc()
        metrics.ATTEMPT_SECONDS.observe(outcome.duration_ms / 1000)
        return settle(job, outcome, self._schedule, rng=self._rng)

    async def _send(self, job: Job) -> None:
        finished = await self._attempt(job)
        # Not `self._results.append(await …)`: that binds the list before the await, and the
        # recorder may have swapped it out meanwhile, losing the result.
        self._results.append(finished)
        self._results_ready.set()

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.pop(task, None)
        if self._backlog:
            self._wake.set()  # capacity freed and more is due: claim again

    async def _record_loop(self) -> None:
        while not self._stopping:
            await self._results_ready.wait()
            self._results_ready.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._results = self._results, []
        try:
            await self._store.deliveries.record(batch, self._clock.now_ms())
        except Exception:
            # Unrecorded attempts stay leased; they are sent again when the lease runs out.
            log.exception("recording %d attempts failed", len(batch))

    async def _shutdown(self, recorder: asyncio.Task[None]) -> None:
        """Give in-flight attempts a grace period, hand the rest back, record everything."""
        if self._sending:
            _, late = await asyncio.wait(list(self._sending), timeout=self._grace)
            unsent = [self._sending[t] for t in late]
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._store.deliveries.release(unsent, self._clock.now_ms())
        self._results_ready.set()
        await recorder  # finishes the flush it may be in; then one last flush here
        await self._flush()
