"""Queue ingest keeps two batches in flight (app/ingest/runner.py): the next batch is validated
and priced while the one before commits, yet batches write and settle strictly in the broker's
order, and a batch whose predecessor failed is given back unwritten — never dead-lettered for
a failure that was not its own.

The broker here is a scripted consumer (the runner's sequencing is the unit under test, as
httpx.MockTransport serves delivery's unit tests); the store and the intake are the hub's own.
End-to-end ingest against the real brokers is tests/test_ingest.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from app import jsoncodec
from app.config import IngestSource
from app.errors import StoreUnavailable
from app.events import Turn
from app.ingest.received import Received
from app.ingest.runner import Ingest
from app.intake import Intake, Item, Outcome
from app.tenants import DEFAULT_TENANT_ID
from tests.conftest import HubClient
from tests.waiting import until


class Script:
    """A broker that hands out the given batches, in order, and records how each message was
    settled."""

    def __init__(self, batches: Sequence[Sequence[str]]) -> None:
        self._batches = [[_message(i) for i in batch] for batch in batches]
        self.settled: list[tuple[str, list[str]]] = []
        self._empty = asyncio.Event()  # never set: an idle fetch waits out its time

    async def open(self) -> None:
        pass

    async def fetch(self, limit: int, wait: float) -> list[Received]:
        if self._batches:
            return self._batches.pop(0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), wait)
        return []

    async def ack(self, messages: Sequence[Received]) -> None:
        self.settled.append(("ack", [m.key or "" for m in messages]))

    async def release(self, messages: Sequence[Received]) -> None:
        self.settled.append(("release", [m.key or "" for m in messages]))

    async def dead_letter(self, body: bytes) -> None:
        self.settled.append(("dead_letter", []))

    async def close(self) -> None:
        pass


def _message(event_id: str) -> Received:
    body = {"type": "t", "parameters": {"n": event_id}, "id": event_id}
    return Received(jsoncodec.dumps(body), event_id, None)


class Held:
    """The hub's intake, with the first batch held before it is taken (a slow commit), and
    told to fail with the store when `fail` is set; records when each batch reaches its turn
    (validated and priced, about to write)."""

    def __init__(self, intake: Intake, fail: bool = False) -> None:
        self._intake = intake
        self._fail = fail
        self.first = asyncio.Event()
        self.reached: list[str] = []
        self._calls = 0

    async def take(
        self, kind: str, tenant_id: str, items: Sequence[Item], turn: Turn | None = None
    ) -> list[Outcome]:
        self._calls += 1
        if self._calls == 1:
            await self.first.wait()
            if self._fail:
                raise StoreUnavailable("the database went away")
        name = str(items[0].body["id"])

        async def reached() -> None:
            self.reached.append(name)
            if turn is not None:
                await turn()

        return await self._intake.take(kind, tenant_id, items, reached)


@contextlib.asynccontextmanager
async def running(hub: HubClient, script: Script, intake: Held) -> AsyncIterator[Ingest]:
    source = IngestSource("events", "redis", "redis://scripted", DEFAULT_TENANT_ID, "s", 2)
    ingest = Ingest([source], intake, hub.hub.store, hub.hub.clock, lambda _: script)  # type: ignore[arg-type]  # Held is an Intake by shape
    task = asyncio.ensure_future(ingest.run())
    try:
        yield ingest
    finally:
        intake.first.set()
        ingest.stop()
        await task


async def _stored(hub: HubClient) -> list[str]:
    listed: dict[str, Any] = (await hub.http.get("/v1/events?limit=100")).json()
    return sorted(e["idempotency_key"] for e in listed["data"])


async def test_the_next_batch_is_prepared_while_one_commits_and_written_after_it(
    hub: HubClient,
) -> None:
    await hub.http.post("/v1/event-types", json={"name": "t"})
    script = Script([["a1", "a2"], ["b1", "b2"]])
    intake = Held(hub.hub.intake)
    async with running(hub, script, intake):
        await until(lambda: intake.reached == ["b1"], what="batch b validated while a is held")
        assert await _stored(hub) == [], "b waits for a's commit before it writes"
        intake.first.set()
        await until(lambda: len(script.settled) == 2, what="both batches settled")
    assert script.settled == [("ack", ["a1", "a2"]), ("ack", ["b1", "b2"])]
    assert await _stored(hub) == ["a1", "a2", "b1", "b2"]


async def test_a_batch_after_one_the_store_refused_is_given_back_not_dead_lettered(
    hub: HubClient,
) -> None:
    await hub.http.post("/v1/event-types", json={"name": "t"})
    script = Script([["a1", "a2"], ["b1", "b2"]])
    intake = Held(hub.hub.intake, fail=True)
    async with running(hub, script, intake):
        await until(lambda: intake.reached == ["b1"], what="batch b validated while a is held")
        intake.first.set()
        await until(lambda: len(script.settled) == 2, what="both batches given back")
    assert script.settled == [("release", ["a1", "a2"]), ("release", ["b1", "b2"])]
    assert await _stored(hub) == []
