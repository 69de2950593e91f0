"""The worker: claim due deliveries with a lease, send them, record the outcomes.

All pending work lives in the store (`next_attempt_at`); the worker only ever holds leased
copies, so killing it loses nothing: an expired lease makes a delivery claimable again.

Each turn of the loop is one transaction that records every attempt finished since the last
turn and claims as many due deliveries as there is room for; while it commits, more attempts
finish, so under load a turn serves hundreds of deliveries.

Fairness: an endpoint has at most `endpoint_concurrency` attempts in flight (and keeps to its
`rate_limit_per_s`), so one slow or dead endpoint only ever occupies its own slots. Each
endpoint also has a local queue (prefetch), sized to about two seconds of its observed work,
so that a finished attempt is followed by the next at once without waiting for a turn; a
queued delivery whose lease grows too short to finish an attempt is handed back, not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable

from app import health, metrics
from app.clock import Clock
from app.config import Settings
from app.delivery import Deliverer
from app.records import Finished, Job
from app.settle import settle
from app.store import Store, StoreUnavailable
from app.store.deliveries import Claim
from app.store.outcomes import Rules

log = logging.getLogger("billhook.worker")

CLAIM_BATCH = 512
MIN_CLAIM = 32
QUEUE_SECONDS = 2.0  # an endpoint's local queue holds about this much of its work
MAX_DEPTH = 64  # … and at most this many times its concurrency
LATENCY_WEIGHT = 0.2


def rules_for(settings: Settings) -> Rules:
    """Endpoint health rules; a failing endpoint's probes follow the retry schedule."""
    return Rules(health.judge, tuple(round(s * 1000) for s in settings.retry_schedule))


class Bucket:
    """A token bucket for an endpoint's `rate_limit_per_s` (burst: one second's worth)."""

    def __init__(self, rate: float, now: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.tokens = rate
        self._now = now
        self.at = now()

    def available(self) -> float:
        now = self._now()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens

    def wait(self) -> float:
        """Seconds until a token is there."""
        return max(0.0, (1 - self.available()) / self.rate)


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
        self._send_ms = round((settings.request_timeout + settings.connect_timeout) * 1000)
        self._capacity = settings.worker_concurrency
        self._cap = settings.endpoint_concurrency
        self._poll = settings.poll_interval
        self._grace = settings.shutdown_grace
        self._rng = rng or random.Random()
        self._rules = rules_for(settings)
        self._sending: dict[asyncio.Task[None], Job] = {}
        self._busy: Counter[str] = Counter()
        self._queues: defaultdict[str, deque[Job]] = defaultdict(deque)
        self._buckets: dict[str, Bucket] = {}
        self._latency: dict[str, float] = {}  # seconds per attempt, smoothed, per endpoint
        self._results: list[Finished] = []
        self._handed_back: list[Job] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._backlog = False
        self.on_endpoints_changed: Callable[[], None] = lambda: None
        self.monotonic: Callable[[], float] = time.monotonic  # rate limits' time; tests freeze it

    def notify(self) -> None:
        """New work was committed in this process: claim now rather than at the next poll."""
        self._wake.set()

    # -- driven mode: tests and tools --------------------------------------------------------

    async def run_once(self) -> int:
        """Claim what is due now (within each endpoint's room), send it, record it."""
        jobs = await self._turn([], CLAIM_BATCH, driven=True)
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
        """Until stop(): keep up to `worker_concurrency` attempts in flight or queued."""
        try:
            while not self._stopping:
                want = self._room()
                finished, self._results = self._results, []
                if not finished and not want and not self._handed_back:
                    await self._sleep()
                    continue
                jobs = await self._turn(finished, want)
                self._queue(jobs)
                self._backlog = bool(want) and len(jobs) == want
                if not self._backlog and not self._results:
                    await self._sleep()
        finally:
            await self._shutdown()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _held(self) -> int:
        return len(self._sending) + sum(len(q) for q in self._queues.values())

    def _room(self) -> int:
        """How many to claim: in chunks, not one row per completed attempt."""
        free = self._capacity - self._held()
        if free < min(self._capacity, MIN_CLAIM) and self._sending:
            return 0
        return min(free, CLAIM_BATCH)

    def _depth(self, endpoint_id: str) -> int:
        """Queue depth: ~QUEUE_SECONDS of the endpoint's work, between 1× and 64× its
        concurrency; an endpoint not seen yet gets 2×."""
        latency = self._latency.get(endpoint_id)
        if latency is None:
            return 2 * self._cap
        return self._cap * max(1, min(MAX_DEPTH, int(QUEUE_SECONDS / max(latency, 1e-3))))

    def _claim(self, want: int, driven: bool = False) -> Claim:
        """Room per endpoint: its queue depth less what this worker holds for it."""
        if driven:  # tests: one attempt per slot, nothing queued
            return Claim(want, self._cap)
        excluded, free = [], {}
        for endpoint_id in set(self._busy) | set(self._queues) | set(self._latency):
            room = self._depth(endpoint_id) - self._busy[endpoint_id]
            room -= len(self._queues.get(endpoint_id, ()))
            if room <= 0:
                excluded.append(endpoint_id)
            else:
                free[endpoint_id] = room
        return Claim(want, 2 * self._cap, tuple(excluded), free)

    def _queue(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._queues[job.endpoint_id].append(job)
        for endpoint_id in {job.endpoint_id for job in jobs}:
            self._pump(endpoint_id)
        metrics.IN_FLIGHT.set(len(self._sending))

    def _pump(self, endpoint_id: str) -> None:
        """Start queued attempts while the endpoint has slots (and rate) for them."""
        queue = self._queues[endpoint_id]
        while queue and self._busy[endpoint_id] < self._cap and not self._stopping:
            job = queue[0]
            if job.rate_limit_per_s and not self._token(job):
                return
            queue.popleft()
            if job.lease_until - self._clock.now_ms() < self._send_ms:
                self._handed_back.append(job)  # too late to finish inside the lease
                continue
            self._busy[endpoint_id] += 1
            task = asyncio.create_task(self._send(job))
            self._sending[task] = job
            task.add_done_callback(self._sent)
        if not queue:
            self._queues.pop(endpoint_id, None)

    def _token(self, job: Job) -> bool:
        assert job.rate_limit_per_s
        bucket = self._buckets.setdefault(
            job.endpoint_id, Bucket(job.rate_limit_per_s, self.monotonic)
        )
        bucket.rate = job.rate_limit_per_s
        if bucket.available() >= 1:
            bucket.tokens -= 1
            return True
        asyncio.get_running_loop().call_later(bucket.wait(), self._pump, job.endpoint_id)
        return False

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll)
        self._wake.clear()

    async def _turn(self, finished: list[Finished], want: int, driven: bool = False) -> list[Job]:
        now = self._clock.now_ms()
        handed_back, self._handed_back = self._handed_back, []
        try:
            if handed_back:
                await self._store.deliveries.release(handed_back, now)
            turn = await self._store.deliveries.turn(
                finished, now, now + self._lease_ms, self._claim(want, driven), self._rules
            )
        except StoreUnavailable as exc:
            # Unrecorded attempts stay leased; they are sent again when the lease runs out.
            log.warning("the store is away (%s): %d attempts unrecorded", exc, len(finished))
            await asyncio.sleep(self._poll)
            return []
        except Exception:
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
        seconds = finished.attempt.duration_ms / 1000
        before = self._latency.get(job.endpoint_id, seconds)
        self._latency[job.endpoint_id] = before + LATENCY_WEIGHT * (seconds - before)
        # Not `self._results.append(await …)`: that binds the list before the await, and the
        # loop may have swapped it out meanwhile, losing the result.
        self._results.append(finished)
        self._wake.set()

    def _sent(self, task: asyncio.Task[None]) -> None:
        job = self._sending.pop(task, None)
        if job is None:
            return
        self._busy[job.endpoint_id] -= 1
        if not self._busy[job.endpoint_id]:
            del self._busy[job.endpoint_id]
        if job.endpoint_id in self._queues:
            self._pump(job.endpoint_id)  # the next one goes now, not at the next turn

    async def _shutdown(self) -> None:
        """Give in-flight attempts a grace period, hand the rest back, record everything."""
        queued = [job for queue in self._queues.values() for job in queue]
        self._queues.clear()
        unsent: list[Job] = queued + self._handed_back
        self._handed_back = []
        if self._sending:
            _, late = await asyncio.wait(list(self._sending), timeout=self._grace)
            unsent += [self._sending[t] for t in late]
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._store.deliveries.release(unsent, self._clock.now_ms())
        finished, self._results = self._results, []
        await self._turn(finished, 0)
