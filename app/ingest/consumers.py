"""Reading queue ingest's messages from a broker, and settling them: a RabbitMQ queue
(app/ingest/rabbitmq.py), a NATS JetStream durable pull consumer, a Redis stream consumer
group. Nothing here acknowledges on its own: the runner (app/ingest/runner.py) acks a message
only after the transaction that accepted it committed, so a crash in between redelivers it and
idempotency answers the repeat.

Each message's `key` is the broker's stable id for it (NATS: the stream sequence or the
publisher's Nats-Msg-Id; Redis: the entry id; RabbitMQ: the publisher's message_id): an event
that names no id of its own is keyed by it, so a redelivery is a repeat, not a second event.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

import nats
import nats.errors
import nats.js.errors
import redis.asyncio as aioredis
from nats.js.api import AckPolicy, ConsumerConfig

from app.config import IngestSource, parse_duration
from app.ingest.rabbitmq import RabbitMQConsumer
from app.ingest.received import Consumer, Received

REDELIVER_AFTER = "30s"  # a message taken but not settled is redelivered after this


def consumer_for(source: IngestSource) -> Consumer:
    kinds: dict[str, Callable[[IngestSource], Consumer]] = {
        "rabbitmq": RabbitMQConsumer, "nats": NatsConsumer, "redis": RedisConsumer,
    }  # fmt: skip
    return kinds[source.broker](source)


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
            await self._still_there()
            return []
        return [Received(m.data, _nats_key(m), m) for m in found]

    async def _still_there(self) -> None:
        """A fetch that found nothing cannot tell an idle stream from a deleted consumer or
        stream (nats-py only times out, for good): the server is asked, once per empty wait,
        so the runner opens a new consumer (and says so while the stream is missing)."""
        try:
            await self._subscription.consumer_info()
        except nats.js.errors.NotFoundError as exc:
            raise ConnectionError(f"the JetStream consumer or its stream is gone: {exc}") from exc

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
