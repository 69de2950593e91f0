"""The worker and the queue in the store: leases, timing from stored data, graceful stop."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.testing import FrozenClock, Receiver
from tests.conftest import START_MS, HubClient
from tests.waiting import until


class Gate:
    """A receiver that holds every request until released."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.arrived = 0
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.arrived += 1
        await self.open.wait()
        return PlainTextResponse("ok")


async def test_retry_waits_for_its_stored_time(hub_factory, receiver):
    """A failed attempt is not retried before next_attempt_at: the delay is data, not a sleep."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retry_schedule="5s,5m")
    app, server = receiver  # no secret yet: it answers 503
    ep = await hub.endpoint(server.url)
    event = await hub.publish("t", {})
    assert await hub.drain() == 1
    [delivery] = (await hub.http.get(f"/v1/events/{event['id']}")).json()["deliveries"]
    assert delivery["status"] == "pending" and delivery["last_status_code"] == 503
    clock.advance(3.9)  # inside the 5 s ± 20 % window's lower bound
    assert await hub.drain() == 0
    app.set_secret(ep["secret"])
    clock.advance(2.2)  # past its upper bound
    assert await hub.drain() == 1
    assert app.inbox.ids() == {event["id"]}


async def test_expired_lease_makes_a_delivery_claimable_again(hub_factory, receiver):
    """A worker that dies after claiming loses nothing: the lease runs out, another sends it."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock)
    app, server = receiver
    app.set_secret((await hub.endpoint(server.url))["secret"])
    event = await hub.publish("t", {})
    lease_ms = round(hub.hub.settings.lease_seconds * 1000)
    crashed = await hub.hub.store.deliveries.claim(clock.now_ms(), clock.now_ms() + lease_ms, 10)
    assert len(crashed) == 1  # claimed by a worker that then vanished
    assert await hub.drain() == 0
    clock.advance(lease_ms / 1000)
    assert await hub.drain() == 1
    assert app.inbox.ids() == {event["id"]}


async def test_an_outcome_recorded_after_the_lease_was_lost_does_not_overwrite(hub_factory):
    """Only the current lease holder moves a delivery on; the stale attempt is still logged."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock)
    await hub.endpoint("http://127.0.0.1:9/a")
    event = await hub.publish("t", {})
    store = hub.hub.store
    [stale] = await store.deliveries.claim(clock.now_ms(), clock.now_ms() + 1000, 10)
    clock.advance(2)
    [current] = await store.deliveries.claim(clock.now_ms(), clock.now_ms() + 1000, 10)
    from app.delivery import Outcome
    from app.settle import settle

    late = settle(stale, Outcome(clock.now_ms(), 5, status_code=200), ())
    await store.deliveries.record([late], clock.now_ms(), hub.hub.events.rules)
    [delivery] = (await hub.http.get(f"/v1/events/{event['id']}")).json()["deliveries"]
    assert delivery["status"] == "delivering"
    assert current.lease_until != stale.lease_until
    attempts = (await hub.http.get(f"/v1/deliveries/{delivery['id']}/attempts")).json()["data"]
    assert len(attempts) == 1


async def test_graceful_stop_hands_unfinished_work_back_at_once(hub_factory):
    """On stop, attempts still in flight after the grace period are released, not lost:
    they are pending and due immediately, with no attempt counted."""
    hub: HubClient = await hub_factory(shutdown_grace=0.2)
    gate = Gate()
    async with Receiver(gate.app, "/hook") as server:
        await hub.endpoint(server.url)
        event = await hub.publish("t", {})
        run = asyncio.create_task(hub.hub.worker.run())
        await until(lambda: gate.arrived > 0, 5)
        hub.hub.worker.stop()
        await run
        gate.open.set()
    [delivery] = (await hub.http.get(f"/v1/events/{event['id']}")).json()["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("pending", 0)


async def test_graceful_stop_waits_for_attempts_that_finish_in_time(hub_factory, receiver):
    hub: HubClient = await hub_factory(shutdown_grace=5)
    app, server = receiver
    app.set_secret((await hub.endpoint(server.url))["secret"])
    events = [await hub.publish("t", {"n": n}) for n in range(20)]
    run = asyncio.create_task(hub.hub.worker.run())
    hub.hub.worker.stop()
    await run
    statuses = []
    for event in events:
        detail = (await hub.http.get(f"/v1/events/{event['id']}")).json()
        statuses += [d["status"] for d in detail["deliveries"]]
    # Whatever was claimed before the stop was sent and recorded; the rest is simply pending.
    assert set(statuses) <= {"succeeded", "pending"}
    assert app.inbox.count() == statuses.count("succeeded")
