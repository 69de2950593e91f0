"""Fairness: a dead endpoint never delays the others; caps, rate limits and lanes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.delivery import Outcome
from app.lanes import Bucket
from app.settle import settle
from app.store.deliveries import Claim
from app.testing import FrozenClock, Receiver
from tests.conftest import START_MS, HubClient
from tests.test_e2e import Recorder
from tests.waiting import until


class Hang:
    """A receiver that never answers, counting how many requests it holds at once."""

    def __init__(self) -> None:
        self.open = 0
        self.most = 0
        self.release = asyncio.Event()
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.open += 1
        self.most = max(self.most, self.open)
        try:
            await self.release.wait()
        finally:
            self.open -= 1
        return PlainTextResponse("late")


async def test_a_hung_endpoint_does_not_delay_a_healthy_one(hub_factory):
    """While one endpoint's attempts hang until their timeout, every delivery to the other
    arrives — well before the first timeout — and the hung one holds only its own slots."""
    hub: HubClient = await hub_factory(
        run_worker=True, request_timeout=30.0, endpoint_concurrency=4
    )
    hang, healthy = Hang(), Recorder()
    async with Receiver(hang.app, "/hook") as stuck, Receiver(healthy.app, "/hook") as fine:
        await hub.endpoint(stuck.url, filter={"customerNumber": "slow"})
        healthy.secret = (await hub.endpoint(fine.url, filter={"customerNumber": "fast"}))["secret"]
        for n in range(40):
            await hub.publish("t", {"customerNumber": "slow", "n": n})
        fast = [
            (await hub.publish("t", {"customerNumber": "fast", "n": n}))["id"] for n in range(40)
        ]
        # Well before the hung ones time out (30 s): they do not hold the healthy ones up.
        await until(lambda: len(healthy.requests) >= 40, 10)
        assert sorted(healthy.ids()) == sorted(fast)
        assert hang.most <= 4  # its concurrency cap, however many are due
        hang.release.set()


async def test_first_attempts_go_before_late_retries(hub_factory):
    """Lane 0 (first attempts and replays) is claimed before lane 1 (retries), even when the
    retry has been due for longer."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock)
    store = hub.hub.store
    endpoint = await hub.endpoint("http://127.0.0.1:9/x")
    old = await hub.publish("t", {"n": "retry"})
    [job] = await store.deliveries.claim(clock.now_ms(), clock.now_ms() + 60_000, 10)
    failed = settle(job, Outcome(clock.now_ms(), 1, status_code=500, error="http_5xx"), (0.0,))
    await store.deliveries.record([failed], clock.now_ms(), hub.hub.events.rules)
    clock.advance(60)
    fresh = await hub.publish("t", {"n": "first"})
    [claimed] = await store.deliveries.claim(clock.now_ms(), clock.now_ms() + 60_000, 1)
    assert claimed.event_id == fresh["id"]
    [after] = await store.deliveries.claim(clock.now_ms(), clock.now_ms() + 60_000, 1)
    assert after.event_id == old["id"] and after.endpoint_id == endpoint["id"]


async def test_the_claim_keeps_to_each_endpoints_room(hub: HubClient):
    """A claim never gives one endpoint more than its room, nor any to an excluded one."""
    store = hub.hub.store
    a = await hub.endpoint("http://127.0.0.1:9/a", filter={"customerNumber": "a"})
    b = await hub.endpoint("http://127.0.0.1:9/b", filter={"customerNumber": "b"})
    for n in range(10):
        await hub.publish("t", {"customerNumber": "a", "n": n})
        await hub.publish("t", {"customerNumber": "b", "n": n})
    now = hub.hub.clock.now_ms()
    turn = await store.deliveries.turn([], now, now + 60_000, Claim(100, cap=3, free={b["id"]: 1}))
    by_endpoint = [j.endpoint_id for j in turn.jobs]
    assert (by_endpoint.count(a["id"]), by_endpoint.count(b["id"])) == (3, 1)
    turn = await store.deliveries.turn(
        [], now, now + 60_000, Claim(100, cap=3, excluded=(a["id"],))
    )
    assert {j.endpoint_id for j in turn.jobs} == {b["id"]}


class RateLimited:
    """A running hub whose worker's monotonic clock is frozen at `now[0]`, and an endpoint
    limited to 5 per second whose receiver records what arrives; `events` published to it."""

    def __init__(self, hub: HubClient) -> None:
        self.hub, self.worker, self.now = hub, hub.hub.worker, [1000.0]
        self.worker.monotonic = lambda: self.now[0]
        self.recorder = Recorder()
        self.endpoint: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def publishing(self, events: int) -> AsyncIterator[RateLimited]:
        async with Receiver(self.recorder.app, "/hook") as server:
            self.endpoint = await self.hub.endpoint(server.url, rate_limit_per_s=5)
            self.recorder.secret = self.endpoint["secret"]
            for n in range(events):
                await self.hub.publish("t", {"n": n})
            yield self

    def sent(self) -> int:
        return len(self.recorder.requests)

    def refill(self, seconds: float) -> None:
        """The bucket's time moves on, and the endpoint's lane is pumped."""
        self.now[0] += seconds
        self.worker._pump(self.endpoint["id"])


async def test_rate_limited_endpoint_is_sent_no_faster_than_its_rate(hub_factory):
    """rate_limit_per_s 5: a burst of five, then one per fifth of a second. The bucket's
    time is frozen, so what went out is a count, not a timing."""
    limited = RateLimited(await hub_factory(run_worker=True))
    async with limited.publishing(10):
        worker = limited.worker

        def waiting() -> int:
            lane = worker.lanes.get(limited.endpoint["id"])
            return len(lane.queue) if lane else 0

        await until(lambda: limited.sent() == 5 and waiting() == 5 and not worker._sending)
        limited.refill(0.5)  # two and a half tokens' worth
        await until(lambda: limited.sent() == 7)
        assert waiting() == 3


async def test_queued_attempts_whose_lease_ran_out_never_spend_the_rate(hub_factory):
    """Attempts that waited behind a rate limit until their lease ran out are handed back
    without taking a token, and claimed again: the rate goes to attempts that can be sent.
    (They used to take the tokens, and a backlog deeper than the rate could send within a
    lease stalled for good.) Both clocks are frozen: what went out is a count."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, run_worker=True)
    limited = RateLimited(hub)
    async with limited.publishing(12):
        await until(lambda: limited.sent() == 5 and not limited.worker._sending)
        clock.advance(hub.hub.settings.lease_seconds + 1)  # every queued lease has run out
        limited.refill(1.0)  # five tokens
        await until(lambda: limited.sent() == 10, what="five more sent, not wasted")


def test_token_bucket():
    """Burst of one second's worth, refilled at the rate, never above the burst."""
    now = [0.0]
    bucket = Bucket(5, lambda: now[0])
    assert bucket.available() == 5
    bucket.tokens -= 5
    assert bucket.available() == 0 and bucket.wait() == 0.2
    now[0] += 0.3
    assert bucket.available() == 1.5
    now[0] += 60
    assert bucket.available() == 5
