"""Ordered endpoints: one delivery in flight per ordering key, in ingest order, and a failing
head holds back only its own key."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app import jsoncodec
from app.testing import FrozenClock, Receiver
from tests.conftest import START_MS, HubClient
from tests.test_billing import completion, post


class ByKey:
    """Answers 500 for the keys in `failing`, 200 otherwise, and logs (key, n) as it arrives."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.seen: list[tuple[str, int]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        parameters = jsoncodec.loads(await request.body())["parameters"]
        key = parameters["key"]
        self.seen.append((key, parameters["n"]))
        return PlainTextResponse("", status_code=500 if key in self.failing else 200)

    def of(self, key: str) -> list[int]:
        return [n for k, n in self.seen if k == key]


async def _publish(hub: HubClient, key: str, n: int) -> Any:
    return await hub.publish("t", {"key": key, "n": n}, ordering_key=key)


async def test_a_failing_head_blocks_only_its_own_key(hub_factory):
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retry_schedule="1m,1m,1m")
    receiver = ByKey(failing={"A"})
    async with Receiver(receiver.app, "/hook") as server:
        await hub.endpoint(server.url, ordered=True)
        for n in range(3):
            await _publish(hub, "A", n)
            await _publish(hub, "B", n)
        await hub.drain()
        # B went through in order; A's head failed once and A1, A2 wait behind it.
        assert receiver.of("B") == [0, 1, 2]
        assert receiver.of("A") == [0]

        clock.advance(75)  # past the retry with its ±20 % jitter
        await hub.drain()
        assert receiver.of("A") == [0, 0]  # the head's retry, never the next one

        receiver.failing.clear()  # the merchant fixes the bug
        clock.advance(75)
        await hub.drain()  # the head succeeds, and each success lets the next one go at once
        assert receiver.of("A") == [0, 0, 0, 1, 2]
        assert receiver.of("B") == [0, 1, 2]


async def test_one_in_flight_per_key_even_when_all_are_due(hub: HubClient):
    """The claim never hands out two deliveries of the same key at once; other keys go in
    parallel, and each key's come out in ingest order."""
    receiver = ByKey(failing=set())
    async with Receiver(receiver.app, "/hook") as server:
        await hub.endpoint(server.url, ordered=True)
        for n in range(4):
            for key in ("A", "B", "C"):
                await _publish(hub, key, n)
        rounds = []
        while sent := await hub.hub.worker.run_once():
            rounds.append(sent)
        assert rounds == [3, 3, 3, 3]  # one per key per round
        assert all(receiver.of(key) == [0, 1, 2, 3] for key in "ABC")


async def test_an_unordered_endpoint_sends_everything_due_at_once(hub: HubClient):
    """The same events to an endpoint without `ordered` are not held back (control)."""
    receiver = ByKey(failing=set())
    async with Receiver(receiver.app, "/hook") as server:
        await hub.endpoint(server.url)
        for n in range(4):
            await _publish(hub, "A", n)
        assert await hub.hub.worker.run_once() == 4


async def test_a_replay_to_an_ordered_endpoint_queues_behind_its_key(hub_factory):
    """A replayed event waits for the pending head of its key rather than overtaking it."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retry_schedule="1m")
    receiver = ByKey(failing={"A"})
    async with Receiver(receiver.app, "/hook") as server:
        endpoint = await hub.endpoint(server.url, ordered=True)
        first = await _publish(hub, "A", 0)
        await hub.drain()
        assert receiver.of("A") == [0]  # failed; its retry is due in a minute
        replay = await hub.http.post(
            f"/v1/events/{first['id']}/replay", json={"endpoint_id": endpoint["id"]}
        )
        assert replay.status_code == 202, replay.text
        await hub.drain()
        assert receiver.of("A") == [0]  # the replay waits behind the pending retry
        receiver.failing.clear()
        clock.advance(75)  # past the retry with its ±20 % jitter
        await hub.drain()
        assert receiver.of("A") == [0, 0, 0]  # the retry, then the replay


async def test_billing_events_are_ordered_by_external_contract_id(hub: HubClient):
    accepted = await post(hub, "/v1/usage-completions", completion(externalContractId="K-77"))
    assert accepted.status_code == 202, accepted.text
    event = (await hub.http.get(f"/v1/events/{accepted.json()['event_id']}")).json()
    assert event["ordering_key"] == "K-77"
