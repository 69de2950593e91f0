"""Broker scenarios, beside their HTTP counterparts in one run (`python -m bench --brokers`):
deliver@<broker> drains the `deliver` backlog (events × 5 endpoints) into five queues, subjects
or streams of this machine's RabbitMQ, NATS JetStream or Redis; ingest@<broker> takes the
`accept_batch` events from a queue, a JetStream consumer or a Redis consumer group.

Counts are read from the broker (what it confirmed holding) and from the store (what ingest
committed); the bench process only publishes the ingest backlog and polls."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import databases
from bench.procs import AUXILIARY, Hub
from bench.scenarios import (
    Env,
    _backlog,
    _endpoints,
    accept_batch,
    deliver,
    event_template,
    receiver_ceiling,
)

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
NATS = "nats://127.0.0.1:4222"
REDIS = "redis://127.0.0.1:6379/0"
TARGETS = 5  # endpoints in `deliver`


class Broker:
    """One broker's plumbing: targets to deliver into, a source to ingest from, counts."""

    name = ""
    url = ""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(4)

    def endpoint(self, n: int) -> dict[str, Any]:
        raise NotImplementedError

    async def prepare(self) -> None: ...
    async def held(self) -> int:
        """Messages the delivery targets hold."""
        raise NotImplementedError

    async def fill(self, bodies: list[bytes]) -> None:
        raise NotImplementedError

    def source(self) -> str:
        raise NotImplementedError

    async def cleanup(self) -> None: ...


class RabbitMQ(Broker):
    name, url = "rabbitmq", AMQP

    def _queue(self, n: int) -> str:
        return f"bench-{self.tag}-{n}"

    def endpoint(self, n: int) -> dict[str, Any]:
        return {"type": "rabbitmq", "url": AMQP, "config": {"routing_key": self._queue(n)}}

    async def _each(self, act: Callable[[Any, str], Any], names: list[str]) -> list[Any]:
        import aio_pika

        async with await aio_pika.connect(AMQP) as connection:
            channel = await connection.channel()
            return [await act(channel, name) for name in names]

    def _all(self) -> list[str]:
        return [self._queue(n) for n in range(TARGETS)] + [self._queue(99)]

    async def prepare(self) -> None:
        await self._each(lambda ch, q: ch.declare_queue(q, durable=True), self._all())

    async def held(self) -> int:
        async def count(channel: Any, queue: str) -> int:
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)

        return sum(await self._each(count, self._all()[:TARGETS]))

    async def fill(self, bodies: list[bytes]) -> None:
        import aio_pika

        async with await aio_pika.connect(AMQP) as connection:
            channel = await connection.channel(publisher_confirms=False)
            for body in bodies:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=2), self._queue(99)
                )

    def source(self) -> str:
        return f"events {AMQP} queue={self._queue(99)}"

    async def cleanup(self) -> None:
        await self._each(lambda ch, q: ch.queue_delete(q), self._all())


class Nats(Broker):
    name, url = "nats", NATS

    @property
    def stream(self) -> str:
        return f"BENCH_{self.tag}"

    def endpoint(self, n: int) -> dict[str, Any]:
        return {"type": "nats", "url": NATS, "config": {"subject": f"bench{self.tag}.out.{n}"}}

    async def _js(self, act: Callable[[Any], Any]) -> Any:
        import nats

        client = await nats.connect(NATS)
        try:
            return await act(client.jetstream())
        finally:
            await client.close()

    async def prepare(self) -> None:
        from nats.js.api import StreamConfig

        config = StreamConfig(name=self.stream, subjects=[f"bench{self.tag}.>"])
        await self._js(lambda js: js.add_stream(config))

    async def held(self) -> int:
        async def count(js: Any) -> int:
            info = await js.stream_info(self.stream, subjects_filter=f"bench{self.tag}.out.>")
            return int(sum((info.state.subjects or {}).values()))

        return int(await self._js(count))

    async def fill(self, bodies: list[bytes]) -> None:
        async def publish(js: Any) -> None:
            for start in range(0, len(bodies), 500):
                chunk = bodies[start : start + 500]
                await asyncio.gather(*(js.publish(f"bench{self.tag}.in", b) for b in chunk))

        await self._js(publish)

    def source(self) -> str:
        return f"events {NATS} stream={self.stream} subject=bench{self.tag}.in"

    async def cleanup(self) -> None:
        await self._js(lambda js: js.delete_stream(self.stream))


class Redis(Broker):
    name, url = "redis", REDIS

    def _stream(self, n: int) -> str:
        return f"bench-{self.tag}-{n}"

    def endpoint(self, n: int) -> dict[str, Any]:
        return {"type": "redis", "url": REDIS, "config": {"stream": self._stream(n),
                                                         "maxlen": 1_000_000}}  # fmt: skip

    async def _client(self, act: Callable[[Any], Any]) -> Any:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS)
        try:
            return await act(client)
        finally:
            await client.aclose()

    async def held(self) -> int:
        async def count(client: Any) -> int:
            return sum([await client.xlen(self._stream(n)) for n in range(TARGETS)])

        return int(await self._client(count))

    async def fill(self, bodies: list[bytes]) -> None:
        async def add(client: Any) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for body in bodies:
                    pipe.xadd(self._stream(99), {"body": body})
                await pipe.execute()

        await self._client(add)

    def source(self) -> str:
        return f"events {REDIS} stream={self._stream(99)} group=bench"

    async def cleanup(self) -> None:
        names = [self._stream(n) for n in (*range(TARGETS), 99)]
        await self._client(lambda client: client.delete(*names))


BROKER_PROCESSES = {"rabbitmq": "beam.smp", "nats": "nats-server", "redis": "redis-server"}


@contextlib.contextmanager
def _beside_the_receiver(name: str) -> Iterator[None]:
    """The broker's threads on the receiver's CPUs while a scenario runs (it is the receiver of
    deliver@ and the load generator of ingest@), as the bench places everything but the hub;
    their affinity is given back after."""
    if AUXILIARY is None:
        yield
        return
    before: dict[int, set[int]] = {}
    for pid in _pids(BROKER_PROCESSES[name]):
        for task in (Path("/proc") / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError):
                before[int(task.name)] = os.sched_getaffinity(int(task.name))
                os.sched_setaffinity(int(task.name), AUXILIARY)
    try:
        yield
    finally:
        for tid, cpus in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cpus)


def _pids(command: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == command:
                found.append(int(entry.name))
    return found


def _poll(count: Callable[[], int], expected: int, timeout: float) -> tuple[int, float]:
    """The count once it reached `expected` (or at the deadline) and when it did."""
    deadline = time.monotonic() + timeout
    while (found := count()) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return found, time.time()


def deliver_to(broker: type[Broker]) -> Callable[[Env], dict[str, Any]]:
    def scenario(env: Env) -> dict[str, Any]:
        """The `deliver` backlog, each of its 5 endpoints a target on this broker."""
        target = broker()
        asyncio.run(target.prepare())
        events = int(env.size(10_000, 1_000))
        db = env.db(f"deliver-{target.name}")
        try:
            hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off"}).start()
            try:
                _register(hub, [target.endpoint(n) for n in range(TARGETS)])
            finally:
                hub.stop()
            _backlog(env, db, 0, events)
            hub = Hub(env.workdir, db).start()
            started = time.time()
            try:
                held, done = _poll(lambda: asyncio.run(target.held()), events * TARGETS, 180)
            finally:
                hub.stop()
        finally:
            asyncio.run(target.cleanup())
        return {"delivered": held, "from_start_per_s": held / max(done - started, 1e-9)}

    return scenario


def ingest_from(broker: type[Broker]) -> Callable[[Env], dict[str, Any]]:
    def scenario(env: Env) -> dict[str, Any]:
        """`accept_batch`'s events (3 matching endpoints) taken from this broker, batches of
        100 committed together; the rate is over the span of the stored events' times."""
        source = broker()
        asyncio.run(source.prepare())
        events = int(env.size(20_000, 3_000))
        template = event_template()
        bodies = [(template % f"evt-{source.tag}-{n}").encode() for n in range(events)]
        db = env.db(f"ingest-{source.name}")
        try:
            asyncio.run(source.fill(bodies))
            hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off"}).start()
            try:
                _endpoints(hub, [f"{env.receiver.url}/ok/{n}" for n in range(3)])
            finally:
                hub.stop()
            hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off",
                                        "BILLHOOK_INGEST": source.source()}).start()  # fmt: skip
            try:
                stored, _ = _poll(lambda: _stored(db), events, 180)
            finally:
                hub.stop()
        finally:
            asyncio.run(source.cleanup())
        [(first, last)] = databases.query(db, "SELECT min(created_at), max(created_at) FROM events")
        return {"stored_events": stored,
                "events_per_s": stored / max((last - first) / 1000, 1e-9)}  # fmt: skip

    return scenario


def _stored(db: str) -> int:
    [(count,)] = databases.query(db, "SELECT count(*) FROM events")
    return int(count)


def _register(hub: Hub, bodies: list[dict[str, Any]]) -> None:
    with hub.client() as client:
        for body in bodies:
            client.post("/v1/endpoints", json=body).raise_for_status()


BROKERS: list[type[Broker]] = [RabbitMQ, Nats, Redis]


# `python -m bench --brokers`: each broker beside HTTP delivery and bulk HTTP ingest.
def _placed(broker: type[Broker], scenario: Callable[[Env], dict[str, Any]]) -> Any:
    def run(env: Env) -> dict[str, Any]:
        with _beside_the_receiver(broker.name):
            return scenario(env)

    return run


BROKER_SCENARIOS: dict[str, Callable[[Env], dict[str, Any]]] = {
    "receiver_ceiling": receiver_ceiling,
    "deliver": deliver,
    **{f"deliver@{b.name}": _placed(b, deliver_to(b)) for b in BROKERS},
    "accept_batch": accept_batch,
    **{f"ingest@{b.name}": _placed(b, ingest_from(b)) for b in BROKERS},
}
