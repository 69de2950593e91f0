"""Queue ingest's RabbitMQ consumer: a queue consumed with manual acks, on pika's asyncio
adapter. pika decodes what a socket read brings in one pass and calls back once per message;
aiormq (aio-pika's protocol layer) awaits each of a message's three frames through a queue and
starts a task per message: 152 µs a message against pika's 40 µs on the same machine and
queue, which made RabbitMQ the one broker ingest could not read at the bulk route's rate.

The prefetch window is four batches (one committing, one fetched, two arriving). A batch is
acknowledged with one `multiple` ack when nothing older is still unsettled. Dead letters are
published on the same channel in confirm mode and awaited until the broker confirms them."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import pika
import pika.spec
from pika.adapters.asyncio_connection import AsyncioConnection

from app.config import IngestSource
from app.ingest.received import Received

OPEN_TIMEOUT_S = 10.0


class RabbitMQConsumer:
    def __init__(self, source: IngestSource) -> None:
        self._source = source
        self._connection: Any = None
        self._channel: Any = None
        self._arrived: deque[Received] = deque()
        self._arrival: asyncio.Future[None] | None = None  # what fetch() waits on
        self._waiting: set[asyncio.Future[Any]] = set()  # broker answers awaited
        self._lost: Exception | None = None  # why the connection or channel is gone
        self._closed: asyncio.Future[None] | None = None
        self._unsettled: set[int] = set()  # delivery tags fetched, not yet acked or released
        self._published = 0  # dead letters published: the broker confirms them by this number
        self._confirms: dict[int, asyncio.Future[Any]] = {}

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        opened: asyncio.Future[Any] = self._awaited()
        self._connection = AsyncioConnection(
            pika.URLParameters(self._source.url), custom_ioloop=loop,
            on_open_callback=lambda c: _resolve(opened, c),
            on_open_error_callback=lambda _c, error: self._not_opened(opened, error),
            on_close_callback=self._connection_closed,
        )  # fmt: skip
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            await opened
            self._channel = await self._call(lambda done: self._connection.channel(
                on_open_callback=done))  # fmt: skip
            self._channel.add_on_close_callback(self._channel_closed)
            self._channel.add_on_cancel_callback(self._cancelled)
            await self._prepare(self._channel)

    async def _prepare(self, channel: Any) -> None:
        queue, dead_letter = self._source.option("queue"), self._source.option("dead_letter")
        await self._call(lambda done: channel.confirm_delivery(self._confirmed, callback=done))
        await self._call(lambda done: channel.basic_qos(
            prefetch_count=4 * self._source.batch, callback=done))  # fmt: skip
        await self._call(lambda done: channel.queue_declare(queue, passive=True, callback=done))
        if dead_letter:
            await self._call(lambda done: channel.queue_declare(
                dead_letter, durable=True, callback=done))  # fmt: skip
        await self._call(lambda done: channel.basic_consume(
            queue, self._delivered, auto_ack=False, callback=done))  # fmt: skip

    def _delivered(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self._arrived.append(Received(body, properties.message_id, method.delivery_tag))
        if self._arrival is not None:
            _resolve(self._arrival, None)

    async def fetch(self, limit: int, wait: float) -> list[Received]:
        """Up to `limit` messages: waits up to `wait` for the first, then takes what is there."""
        if not self._arrived and self._lost is None:
            self._arrival = asyncio.get_running_loop().create_future()
            await asyncio.wait([self._arrival], timeout=wait)
            self._arrival = None
        if self._lost is not None:
            raise ConnectionError(f"the RabbitMQ connection closed: {self._lost}")
        found = [self._arrived.popleft() for _ in range(min(limit, len(self._arrived)))]
        self._unsettled.update(m.handle for m in found)
        return found

    async def ack(self, messages: Sequence[Received]) -> None:
        tags = {m.handle for m in messages}
        self._unsettled -= tags
        if tags and (not self._unsettled or min(self._unsettled) > max(tags)):
            self._channel.basic_ack(max(tags), multiple=True)
            return
        for tag in tags:
            self._channel.basic_ack(tag)

    async def release(self, messages: Sequence[Received]) -> None:
        for message in messages:
            self._unsettled.discard(message.handle)
            self._channel.basic_nack(message.handle, requeue=True)

    async def dead_letter(self, body: bytes) -> None:
        queue = self._source.option("dead_letter")
        if not queue:
            return
        confirmed: asyncio.Future[Any] = self._awaited()
        self._published += 1
        self._confirms[self._published] = confirmed
        properties = pika.BasicProperties(content_type="application/json", delivery_mode=2)
        self._channel.basic_publish("", queue, body, properties)
        await confirmed

    def _confirmed(self, frame: Any) -> None:
        method = frame.method
        tags = [t for t in self._confirms if t <= method.delivery_tag] if method.multiple else [
            method.delivery_tag]  # fmt: skip
        for tag in tags:
            future = self._confirms.pop(tag, None)
            if future is None:
                continue
            if isinstance(method, pika.spec.Basic.Nack):
                _fail(future, ConnectionError("RabbitMQ refused the dead letter (nack)"))
            else:
                _resolve(future, None)

    async def close(self) -> None:
        connection, closed = self._connection, self._closed
        if connection is None or closed is None:
            return
        if not (connection.is_closed or connection.is_closing):
            with contextlib.suppress(Exception):
                connection.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(closed), 5)

    # The broker's answers, and its going away, as futures.

    def _awaited(self) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        self._waiting.add(future)
        future.add_done_callback(self._waiting.discard)
        if self._lost is not None:
            _fail(future, ConnectionError(f"the RabbitMQ connection closed: {self._lost}"))
        return future

    async def _call(self, start: Callable[[Callable[[Any], None]], Any]) -> Any:
        answered = self._awaited()
        start(lambda answer: _resolve(answered, answer))
        return await answered

    def _not_opened(self, opened: asyncio.Future[Any], error: BaseException | str) -> None:
        """Refused, unreachable or the login failed: no connection to close afterwards."""
        why = error if isinstance(error, str) else repr(error)
        _fail(opened, ConnectionError(f"could not open a RabbitMQ connection: {why}"))
        if self._closed is not None:
            _resolve(self._closed, None)

    def _connection_closed(self, _connection: Any, reason: Exception) -> None:
        self._went_away(reason)
        if self._closed is not None:
            _resolve(self._closed, None)

    def _channel_closed(self, _channel: Any, reason: Exception) -> None:
        self._went_away(reason)
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _cancelled(self, _frame: Any) -> None:
        """The broker ended the consumer (its queue was deleted): read no more from this
        connection; the runner opens a new one, which says whether the queue is back."""
        self._channel_closed(None, ConnectionError("RabbitMQ cancelled the consumer"))

    def _went_away(self, reason: Exception) -> None:
        self._lost = self._lost or _lost(reason)
        for future in list(self._waiting):
            _fail(future, ConnectionError(f"the RabbitMQ connection closed: {self._lost}"))
        if self._arrival is not None:
            _resolve(self._arrival, None)


def _lost(reason: BaseException | str) -> Exception:
    return reason if isinstance(reason, Exception) else ConnectionError(str(reason))


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
