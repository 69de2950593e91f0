"""The worker: claim due deliveries with a lease, send them, record the outcomes.

All pending work lives in the store (`next_attempt_at`); the worker only ever holds leased
copies, so killing it loses nothing: an expired lease makes a delivery claimable again.

Each turn of the loop is one transaction that records every attempt finished since the last
turn and claims as many due deliveries as there is room for; while it commits, more attempts
finish, so under load a turn serves hundreds of deliveries. Room is per endpoint too: at most
`endpoint_concurrency` in flight and its `rate_limit_per_s`, so one slow or dead endpoint only
ever occupies its own slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable

from app import health, metrics
from app.clock import Clock
from app.config import Settings
from app.delivery import Deliverer
from app.records import Finished, Job
from app.settle import settle
from app.store import Store
from app.store.deliveries import Claim
from app.store.outcomes import Rules

log = logging.getLogger("billhook.worker")

CLAIM_BATCH = 512
MIN_CLAIM = 32


def rules_for(settings: Settings) -> Rules:
    """Endpoint health rules; after a probe runs out of attempts the next waits the longest
    step of the schedule."""
    last_delay = settings.retry_schedule[-1] if settings.retry_schedule else 60.0
    return Rules(health.judge, probe_after_ms=round(last_delay * 1000))


class Bucket:
    """A token bucket for an endpoint's `rate_limit_per_s` (burst: one second's worth)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.at = time.monotonic()

    def available(self) -> int:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return int(self.tokens)

    def take(self) -> None:
        self.tokens -= 1


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
        self._cap = settings.endpoint_concurrency
        self._poll = settings.poll_interval
        self._grace = settings.shutdown_grace
        self._rng = rng or random.Random()
        self._rules = rules_for(settings)
        self._sending: dict[asyncio.Task[None], Job] = {}
        self._busy: Counter[str] = Counter()
        self._buckets: dict[str, Bucket] = {}
        self._results: list[Finished] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._backlog = False
        self.on_endpoints_changed: Callable[[], None] = lambda: None

    def notify(self) -> None:
        """New work was committed in this process: claim now rather than at the next poll."""
        self._wake.set()

    # -- driven mode: tests and tools --------------------------------------------------------

    async def run_once(self) -> int:
        """Claim what is due now (within each endpoint's room), send it, record it."""
        jobs = await self._turn([], CLAIM_BATCH)
        if jobs:
            for job in jobs:
                self._take(job)
            finished = await asyncio.gather(*(self._attempt(job) for job in jobs))
            for job in jobs:
                self._release(job)
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

    def _claim(self, want: int) -> Claim:
        """This worker's room per endpoint: its concurrency cap and rate limit."""
        excluded, free = [], {}
        for endpoint_id in set(self._busy) | set(self._buckets):
            room = self._cap - self._busy[endpoint_id]
            bucket = self._buckets.get(endpoint_id)
            if bucket is not None:
                room = min(room, bucket.available())
            if room <= 0:
                excluded.append(endpoint_id)
            elif room < self._cap:
                free[endpoint_id] = room
        return Claim(want, self._cap, tuple(excluded), free)

    def _take(self, job: Job) -> None:
        self._busy[job.endpoint_id] += 1
        if job.rate_limit_per_s:
            bucket = self._buckets.setdefault(job.endpoint_id, Bucket(job.rate_limit_per_s))
            bucket.rate = job.rate_limit_per_s
            bucket.take()
        else:
            self._buckets.pop(job.endpoint_id, None)

    def _start(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._take(job)
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
        claim = self._claim(want)
        try:
            turn = await self._store.deliveries.turn(
                finished, now, now + self._lease_ms, claim, self._rules
            )
        except Exception:
            # Unrecorded attempts stay leased; they are sent again when the lease runs out.
            log.exception("recording %d attempts or claiming failed", len(finished))
            return []
        if turn.endpoints_changed:
            self.on_endpoints_changed()
        return turn.jobs

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
        job = self._sending.pop(task, None)
        if job is not None:
            self._release(job)

    def _release(self, job: Job) -> None:
        self._busy[job.endpoint_id] -= 1
        if not self._busy[job.endpoint_id]:
            del self._busy[job.endpoint_id]

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
