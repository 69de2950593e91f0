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
from collections.abc import Callable

from app import health, metrics
from app.clock import Clock
from app.config import Settings
from app.delivery import Deliverer
from app.lanes import Lanes
from app.records import Finished, Job
from app.settle import settle
from app.store import Store, StoreUnavailable
from app.store.deliveries import Claim
from app.store.outcomes import Rules

log = logging.getLogger("billhook.worker")

CLAIM_BATCH = 512
MIN_CLAIM = 32


def rules_for(settings: Settings) -> Rules:
    """Endpoint health rules; a failing endpoint's probes follow the retry schedule."""
    return Rules(health.judge, tuple(round(s * 1000) for s in settings.retry_schedule))


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
        self.monotonic: Callable[[], float] = time.monotonic  # rate limits' time; tests freeze it
        self.lanes = Lanes(lambda: self.monotonic())  # per endpoint: slots, queue, rate, latency
        self._results: list[Finished] = []
        self._handed_back: list[Job] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._backlog = False
        self.last_turn = time.monotonic()  # liveness: /healthz says how long ago
        self.on_endpoints_changed: Callable[[], None] = lambda: None

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

    def _room(self) -> int:
        """How many to claim: in chunks, not one row per completed attempt."""
        free = self._capacity - self.lanes.held()
        if free < min(self._capacity, MIN_CLAIM) and self._sending:
            return 0
        return min(free, CLAIM_BATCH)

    def _claim(self, want: int, driven: bool = False) -> Claim:
        """Room per endpoint: its queue depth less what this worker holds for it."""
        if driven:  # tests: one attempt per slot, nothing queued
            return Claim(want, self._cap)
        self.lanes.forget_idle()
        excluded, free = [], {}
        for endpoint_id, lane in self.lanes.items():
            room = lane.depth(self._cap) - lane.busy - len(lane.queue)
            if room <= 0:
                excluded.append(endpoint_id)
            else:
                free[endpoint_id] = room
        return Claim(want, 2 * self._cap, tuple(excluded), free)

    def _queue(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.lanes[job.endpoint_id].queue.append(job)
        for endpoint_id in {job.endpoint_id for job in jobs}:
            self._pump(endpoint_id)
        metrics.IN_FLIGHT.set(len(self._sending))

    def _pump(self, endpoint_id: str) -> None:
        """Start queued attempts while the endpoint has slots (and rate) for them."""
        lane = self.lanes[endpoint_id]
        while lane.queue and lane.busy < self._cap and not self._stopping:
            job = lane.queue[0]
            if job.lease_until - self._clock.now_ms() < self._send_ms:
                lane.queue.popleft()  # too late to finish inside the lease: not worth a token
                self._handed_back.append(job)
                self._wake.set()
                continue
            if job.rate_limit_per_s and not lane.token(job.rate_limit_per_s, self.monotonic):
                assert lane.bucket is not None
                asyncio.get_running_loop().call_later(lane.bucket.wait(), self._pump, endpoint_id)
                return
            lane.queue.popleft()
            lane.busy += 1
            task = asyncio.create_task(self._send(job))
            self._sending[task] = job
            task.add_done_callback(self._sent)

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll)
        self._wake.clear()
        self.last_turn = time.monotonic()  # idle is alive too

    async def _turn(self, finished: list[Finished], want: int, driven: bool = False) -> list[Job]:
        self.last_turn = time.monotonic()
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
            log.warning(
                "the store is away (%s): attempts unrecorded, resent after their lease",
                exc,
                extra={"attempts": len(finished)},
            )
            await asyncio.sleep(self._poll)
            return []
        except Exception:
            log.exception(
                "recording attempts or claiming failed", extra={"attempts": len(finished)}
            )
            await self._record_one_by_one(finished, now)
            return []
        if turn.endpoints_changed:
            self.on_endpoints_changed()
        return turn.jobs

    async def _record_one_by_one(self, finished: list[Finished], now: int) -> None:
        """After a failed turn, each outcome alone: one that cannot be recorded must not send
        its neighbours again (it stays leased, and is sent again after its lease)."""
        if len(finished) < 2:
            return
        for one in finished:
            try:
                turn = await self._store.deliveries.turn(
                    [one], now, now + self._lease_ms, Claim(0), self._rules
                )
            except Exception:
                log.exception(
                    "recording an attempt failed; it is sent again after its lease",
                    extra={"delivery_id": one.job.delivery_id},
                )
                continue
            if turn.endpoints_changed:
                self.on_endpoints_changed()

    async def _attempt(self, job: Job) -> Finished:
        outcome = await self._deliverer.deliver(job)
        metrics.ATTEMPTS_BY_OUTCOME[outcome.error or "success"].inc()
        metrics.ATTEMPT_SECONDS.observe(outcome.duration_ms / 1000)
        return settle(job, outcome, self._schedule, rng=self._rng)

    async def _send(self, job: Job) -> None:
        finished = await self._attempt(job)
        self.lanes[job.endpoint_id].observe(finished.attempt.duration_ms / 1000)
        # Not `self._results.append(await …)`: that binds the list before the await, and the
        # loop may have swapped it out meanwhile, losing the result.
        self._results.append(finished)
        self._wake.set()

    def _sent(self, task: asyncio.Task[None]) -> None:
        job = self._sending.pop(task, None)
        if job is None:
            return
        lane = self.lanes[job.endpoint_id]
        lane.busy -= 1
        if lane.queue:
            self._pump(job.endpoint_id)  # the next one goes now, not at the next turn

    async def _shutdown(self) -> None:
        """Give in-flight attempts a grace period, hand the rest back, record everything."""
        queued: list[Job] = []
        for _, lane in self.lanes.items():
            queued += lane.queue
            lane.queue.clear()
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
