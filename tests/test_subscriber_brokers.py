"""subscribers/brokers.py, the reference consumer a merchant copies, against the real brokers:
what billhook publishes (an ordered endpoint, one routing key / subject per ordering key, an
event replayed) is verified, stored once per webhook-id, in order per key, and acknowledged;
a forged message is dropped, never stored."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import nats
import pytest
import redis.asyncio as aioredis
from nats.js.api import StreamConfig

from subscribers import brokers
from subscribers.receiver import Inbox
from subscribers.verify import Verifier
from tests.brokers import AMQP, NATS, REDIS, SEED
from tests.conftest import HubClient, seed_parameters
from tests.waiting import until

pytestmark = pytest.mark.brokers
FORGED = {"webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time())),
          "webhook-signature": "v1,AAAA"}  # fmt: skip

# One broker's set-up: (endpoint url, endpoint config, consumer(handler, stop), send a forgery).
Setup = tuple[str, dict[str, Any], Callable[..., Awaitable[None]], Callable[[], Awaitable[None]]]


@contextlib.asynccontextmanager
async def rabbitmq() -> AsyncIterator[Setup]:
    """A topic exchange, a queue bound to every ordering key's routing key."""
    tag = secrets.token_hex(4)
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(f"bh-x-{tag}", "topic", auto_delete=True)
    queue = await channel.declare_queue(f"bh-q-{tag}", auto_delete=True)
    await queue.bind(exchange, "billing.#")

    async def forge() -> None:
        body = b'{"type": "x"}'
        await exchange.publish(aio_pika.Message(body, headers=FORGED), "billing.x")

    config = {"exchange": exchange.name, "routing_key": "billing.{ordering_key}"}
    yield AMQP, config, lambda h, stop: brokers.rabbitmq(AMQP, queue.name, h, stop), forge
    await connection.close()


@contextlib.asynccontextmanager
async def jetstream() -> AsyncIterator[Setup]:
    """A stream capturing every ordering key's subject."""
    client = await nats.connect(NATS)
    js = client.jetstream()
    stream = f"BHSUB_{secrets.token_hex(4)}"
    subject = stream.lower()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"]))

    async def forge() -> None:
        await js.publish(f"{subject}.x", b'{"type": "x"}', headers=FORGED)

    config = {"subject": f"{subject}.{{ordering_key}}"}
    yield NATS, config, lambda h, stop: brokers.nats(NATS, f"{subject}.>", "ref", h, stop), forge
    await js.delete_stream(stream)
    await client.close()


@contextlib.asynccontextmanager
async def redis_stream() -> AsyncIterator[Setup]:
    """One stream: its entries are in order for every key."""
    client = aioredis.Redis.from_url(REDIS)
    stream = f"bh-sub-{secrets.token_hex(4)}"

    async def forge() -> None:
        await client.xadd(stream, {**FORGED, "body": b'{"type": "x"}'})

    yield (
        REDIS,
        {"stream": stream},
        lambda h, stop: brokers.redis(REDIS, stream, "ref", h, stop),
        forge,
    )
    await client.delete(stream)
    await client.aclose()


SETUPS = {"rabbitmq": rabbitmq, "nats": jetstream, "redis": redis_stream}


@pytest.mark.parametrize("kind", list(SETUPS))
async def test_the_reference_consumer_stores_each_event_once_in_order_per_key(
    hub: HubClient, kind: str
):
    async with SETUPS[kind]() as (url, config, consume, forge):
        endpoint = await hub.endpoint(url, type=kind, config=config, ordered=True)
        keys = ["C-1", "C-2", "C-1", "C-1", "C-2"]
        bodies = [seed_parameters({"transactionId": str(n)}) for n in range(len(keys))]
        ids = [(await hub.publish(SEED, body, ordering_key=key))["id"]
               for body, key in zip(bodies, keys, strict=True)]  # fmt: skip
        await hub.drain()
        await forge()  # before the repeat: handled by the time the repeat arrives
        replayed = await hub.http.post(f"/v1/events/{ids[0]}/replay", json={})
        assert replayed.status_code == 202, replayed.text
        await hub.drain()
        inbox = Inbox()
        stop = asyncio.Event()
        handler = brokers.Handler(Verifier(endpoint["secret"]), inbox)
        task = asyncio.create_task(consume(handler, stop))
        try:
            await until(lambda: inbox.duplicates() == {ids[0]: 2}, what="the replayed repeat")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
    assert inbox.ids() == set(ids), "every event once, the forged message never"
    arrived = inbox.arrived()
    assert [i for i in arrived if i in (ids[0], ids[2], ids[3])] == [ids[0], ids[2], ids[3]]
    assert [i for i in arrived if i in (ids[1], ids[4])] == [ids[1], ids[4]]
