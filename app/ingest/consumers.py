"""Reading queue ingest's messages from a broker, and settling them: a RabbitMQ queue, a NATS
JetStream durable pull consumer, a Redis stream consumer group. Nothing here acknowledges on its
own: the runner (app/ingest/runner.py) acks a message only after the transaction that accepted
it committed, so a crash in between redelivers it and idempotency answers the repeat.

Each message's `key` is the broker's stable id for it (NATS: the stream sequence or the
publisher's Nats-Msg-Id; Redis: the entry id; RabbitMQ: the publisher's message_id): an event
that names no id of its own is keyed by it, so a redelivery is a repeat, not a second event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiormq
import nats
import nats.errors
import redis.asyncio as aioredis
from nats.js.api import AckPolicy, ConsumerConfig

from app.config import IngestSource, parse_duration

REDELIVER_AFTER = "30s"  # a message taken but not settled is redelivered after this


@dataclass(frozen=True, slots=True)
class Received:
    body: bytes
    key: str | None  # the broker's stable id of the message, when it has one
    handle: Any  # what settling it needs
    problem: str | None = None  # why it cannot be a message at all (a stream entry without body)


class Consumer(Protocol):
    async def open(self) -> None: ...
    async def fetch(self, limit: int, wait: float) -> list[Received]: ...
    async def ack(self, messages: Sequence[Received]) -> None: ...
    async def release(self, messages: Sequence[Received]) -> None: ...
    async def dead_letter(self, body: bytes) -> None: ...
    async def close(self) -> None: ...


def consumer_for(source: IngestSource) -> Consumer:
    kinds: dict[str, Callable[[IngestSource], Consumer]] = {
        "rabbitmq": RabbitMQConsumer, "nats": NatsConsumer, "redis": RedisConsumer,
    }  # fmt: skip
    return kinds[source.broker](source)


class RabbitMQConsumer:
    """A queue consumed with manual acks; the prefetch window is four batches (one committing,
    one fetched, two arriving). aiormq (the
    protocol layer under aio-pika) directly: at thousands of messages a second aio-pika's
    per-message objects cost more than the decoding itself. A batch is acknowledged with one
    `multiple` ack when nothing older is still unsettled."""

    def __init__(self, source: IngestSource) -> None:
        self._source = source
        self._buffer: asyncio.Queue[Any] = asyncio.Queue()
        self._connection: Any = None
        self._channel: Any = None
        self._unsettled: set[int] = set()  # delivery tags fetched, not yet acked or released

    async def open(self) -> None:
        async with asyncio.timeout(10):
            self._connection = await aiormq.connect(self._source.url)
        self._channel = await self._connection.channel(publisher_confirms=True)
        await self._channel.basic_qos(prefetch_count=4 * self._source.batch)
        await self._channel.queue_declare(self._source.option("queue"), passive=True)
        dead_letter = self._source.option("dead_letter")
        if dead_letter:
            await self._channel.queue_declare(dead_letter, durable=True)
        await self._channel.basic_consume(
            self._source.option("queue"), self._buffered, no_ack=False
        )

    async def _buffered(self, message: Any) -> None:
        self._buffer.put_nowait(message)

    async def fetch(self, limit: int, wait: float) -> list[Received]:
        if self._connection is None or self._connection.is_closed:
            raise ConnectionError("the RabbitMQ connection closed")
        found = await _drain(self._buffer, limit, wait)
        self._unsettled.update(m.delivery_tag for m in found)
        return [Received(m.body, m.header.properties.message_id, m.delivery_tag) for m in found]

    async def ack(self, messages: Sequence[Received]) -> None:
        tags = {m.handle for m in messages}
        self._unsettled -= tags
        if tags and (not self._unsettled or min(self._unsettled) > max(tags)):
            await self._channel.basic_ack(max(tags), multiple=True)
            return
        for tag in tags:
            await self._channel.basic_ack(tag)

    async def release(self, messages: Sequence[Received]) -> None:
        for message in messages:
            self._unsettled.discard(message.handle)
            await self._channel.basic_nack(message.handle, requeue=True)

    async def dead_letter(self, body: bytes) -> None:
        queue = self._source.option("dead_letter")
        if queue:
            properties = aiormq.spec.Basic.Properties(content_type="application/json",
                                                      delivery_mode=2)  # fmt: skip
            await self._channel.basic_publish(body, routing_key=queue, properties=properties)

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()


class NatsConsumer:
    """A durable pull consumer (explicit acks) on the stream, filtered by the subject."""

    def __init__(self, source: IngestSource) -> None:
        self._source = source
        self._client: Any = None
        self._subscription: Any = None

    async def open(self) -> None:
        source = self._source
        self._client = await nats.connect(source.url, allow_reconnect=False, connect_timeout=5)
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=_redeliver_after(source),
                                max_ack_pending=20 * source.batch)  # fmt: skip
        self._subscription = await self._client.jetstream().pull_subscribe(
            source.option("subject"), durable=source.option("consumer", "billhook"),
            stream=source.option("stream"), config=config,
        )  # fmt: skip

    async def fetch(self, limit: int, wait: float) -> list[Received]:
        if self._client is None or not self._client.is_connected:
            raise ConnectionError("the NATS connection closed")
        try:
            found = await self._subscription.fetch(limit, timeout=wait)
        except nats.errors.TimeoutError:
            return []
        return [Received(m.data, _nats_key(m), m) for m in found]

    async def ack(self, messages: Sequence[Received]) -> None:
        for message in messages:
            await message.handle.ack()

    async def release(self, messages: Sequence[Received]) -> None:
        for message in messages:
            await message.handle.nak(delay=1.0)

    async def dead_letter(self, body: bytes) -> None:
        subject = self._source.option("dead_letter")
        if subject:
            await self._client.jetstream().publish(subject, body)

    async def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()


def _redeliver_after(source: IngestSource) -> float:
    """NATS: the consumer's ack wait (set when it is made); Redis: how long an entry stays
    pending with a consumer before another claims it. RabbitMQ redelivers when the
    connection that took a message closes."""
    return parse_duration(source.option("redeliver_after", REDELIVER_AFTER) or REDELIVER_AFTER)


def _nats_key(message: Any) -> str:
    given = (message.headers or {}).get("Nats-Msg-Id")
    meta = message.metadata
    return str(given) if given else f"{meta.stream}:{meta.sequence.stream}"


class RedisConsumer:
    """A consumer group (made at the stream's start if missing). This consumer's own pending
    entries are read again after a release; entries a dead consumer left pending longer than
    `redeliver_after` (default 30 s) are claimed (XAUTOCLAIM)."""

    def __init__(self, source: IngestSource) -> None:
        self._source = source
        self._stream = source.option("stream") or ""
        self._group = source.option("group", "billhook") or "billhook"
        self._name = source.option("consumer") or f"{socket.gethostname()}-{os.getpid()}"
        self._claim_ms = round(_redeliver_after(source) * 1000)
        self._client: Any = None
        self._pending_first = True

    async def open(self) -> None:
        self._client = aioredis.Redis.from_url(
            self._source.url, socket_connect_timeout=5, socket_timeout=30
        )
        try:
            await self._client.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except aioredis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._pending_first = True

    async def fetch(self, limit: int, wait: float) -> list[Received]:
        claimed = await self._claim(limit)
        if claimed:
            return claimed
        if self._pending_first:
            mine = await self._read("0", limit, None)
            if mine:
                return mine
            self._pending_first = False
        return await self._read(">", limit, round(wait * 1000))

    async def _claim(self, limit: int) -> list[Received]:
        answer = await self._client.xautoclaim(
            self._stream, self._group, self._name, self._claim_ms, "0-0", count=limit
        )
        return [_entry(i, f) for i, f in answer[1]]

    async def _read(self, start: str, limit: int, block: int | None) -> list[Received]:
        answer = await self._client.xreadgroup(
            self._group, self._name, {self._stream: start}, count=limit, block=block
        )
        return [_entry(i, f) for _, entries in answer or () for i, f in entries]

    async def ack(self, messages: Sequence[Received]) -> None:
        if messages:
            await self._client.xack(self._stream, self._group, *(m.handle for m in messages))

    async def release(self, messages: Sequence[Received]) -> None:
        self._pending_first = True  # they stay pending: read them again next time

    async def dead_letter(self, body: bytes) -> None:
        stream = self._source.option("dead_letter")
        if stream:
            await self._client.xadd(stream, {"body": body}, maxlen=100_000, approximate=True)

    async def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes] | None) -> Received:
    key = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    body = (fields or {}).get(b"body")
    if body is None:
        return Received(b"", key, key, "the stream entry has no `body` field")
    return Received(body, key, key)


async def _drain(buffer: asyncio.Queue[Any], limit: int, wait: float) -> list[Any]:
    """Up to `limit` items: waits up to `wait` for the first, then takes what is there."""
    try:
        first = await asyncio.wait_for(buffer.get(), wait)
    except TimeoutError:
        return []
    found = [first]
    while len(found) < limit and not buffer.empty():
        found.append(buffer.get_nowait())
    return found
