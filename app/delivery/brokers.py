"""Deliveries into a merchant's own broker: a RabbitMQ exchange (publisher confirms), a NATS
JetStream subject (the stream's ack), a Redis stream (the XADD reply). A delivery is done only
when the broker said it holds the message; anything else — unreachable, refused, unroutable,
too slow — is an attempt failure like an unreachable URL, retried on the same schedule.

One connection per broker (URL and credentials) serves every endpoint that names it; a
connection that failed is dropped and made again on the next attempt, so a broker that comes
back gets its backlog. The host must pass the egress policy, as a webhook URL's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import urlsplit

import aio_pika
import nats
import redis.asyncio as aioredis
from aio_pika.exceptions import DeliveryError
from nats.js.errors import NoStreamResponseError

from app.destinations import DEFAULT_PORTS, Destination, filled
from app.egress import EgressBlocked, EgressPolicy

REDIS_CONNECTIONS = 64  # per Redis server: concurrent XADDs beyond this wait for one


class BrokerRefused(Exception):
    """The broker answered, and did not take the message (nack, unroutable, no stream)."""


@dataclass(frozen=True, slots=True)
class Message:
    headers: Sequence[tuple[str, str]]  # webhook-id/-timestamp/-signature, CloudEvents, …
    body: bytes
    content_type: str
    message_id: str  # the delivery's: retries of one delivery are one message to the broker
    event_type: str
    ordering_key: str | None


class Publisher(Protocol):
    async def publish(self, destination: Destination, message: Message) -> str: ...
    async def close(self) -> None: ...


class Brokers:
    """The publishers of every broker type, behind one call."""

    def __init__(self, policy: EgressPolicy, timeout: float) -> None:
        self._policy = policy
        self._timeout = timeout
        self._literals: dict[str, bool] = {}  # host → an allowed IP literal (True) or a name
        self._publishers: dict[str, Publisher] = {
            "rabbitmq": RabbitMQ(), "nats": Nats(), "redis": RedisStreams(),
        }  # fmt: skip

    async def publish(self, destination: Destination, message: Message) -> str:
        """What the broker answered; raises on anything but its taking the message."""
        address = await self._checked_address(destination.url)
        publisher = self._publishers[destination.type]
        async with asyncio.timeout(self._timeout):
            return await publisher.publish(replace(destination, address=address), message)

    async def _checked_address(self, url: str) -> str | None:
        """The address a new connection goes to (None: the URL names an IP); every address
        the name resolves to must pass the egress policy."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        literal = self._literals.get(host)
        if literal is None:  # the policy is fixed for the process: remember what it said
            literal = self._literals[host] = self._policy.check_ip_literal(host)
        if literal:
            return None
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = [str(info[4][0]) for info in infos]
        if not found or not all(self._policy.allows(a) for a in found):
            raise EgressBlocked(f"{host} resolves to an address the egress policy refuses")
        return found[0]

    async def close(self) -> None:
        for publisher in self._publishers.values():
            await publisher.close()


class _Connections:
    """Connections by destination key; a failed one is dropped, made again next time."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, str | None], Any] = {}
        self._opening: dict[tuple[str, str, str | None], asyncio.Lock] = {}

    async def get(self, destination: Destination, make: Any) -> Any:
        key = destination.key
        found = self._open.get(key)
        if found is not None:
            return found
        lock = self._opening.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._open:
                self._open[key] = await make(destination)
            return self._open[key]

    async def drop(self, destination: Destination, close: Any) -> None:
        found = self._open.pop(destination.key, None)
        if found is not None:
            with contextlib.suppress(Exception):
                await close(found)

    async def close_all(self, close: Any) -> None:
        for found in list(self._open.values()):
            with contextlib.suppress(Exception):
                await close(found)
        self._open.clear()


class RabbitMQ:
    """AMQP 0-9-1 with publisher confirms: `publish` returns once the broker confirmed; an
    unroutable message (no queue bound) is returned by the broker and counts as refused."""

    def __init__(self) -> None:
        self._connections = _Connections()

    async def publish(self, destination: Destination, message: Message) -> str:
        channel = await self._connections.get(destination, self._open)
        config = destination.config
        headers: dict[str, Any] = dict(message.headers)
        amqp = aio_pika.Message(
            message.body, headers=headers, content_type=message.content_type,
            message_id=message.message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            type=message.event_type,
        )  # fmt: skip
        routing_key = filled(config["routing_key"], message.event_type, message.ordering_key)
        try:
            exchange = (
                channel.default_exchange
                if not config["exchange"]
                else await channel.get_exchange(config["exchange"], ensure=False)
            )
            await exchange.publish(amqp, routing_key=routing_key, mandatory=True)
        except DeliveryError as exc:
            raise BrokerRefused(f"not routed ({exc}): bind a queue to {routing_key!r}") from exc
        except Exception:
            await self._connections.drop(destination, _close_channel)
            raise
        where = config["exchange"] or "(default exchange)"
        return f"confirmed by RabbitMQ: exchange {where}, routing key {routing_key}"

    async def _open(self, destination: Destination) -> Any:
        connection = await aio_pika.connect(destination.connect_url(), timeout=10)
        return await connection.channel(publisher_confirms=True, on_return_raises=True)

    async def close(self) -> None:
        await self._connections.close_all(_close_channel)


async def _close_channel(channel: Any) -> None:
    await channel.connection.close()


class Nats:
    """JetStream: the stream that captures the subject acknowledges (its sequence number);
    the delivery id as Nats-Msg-Id lets the stream drop a retry of a message it already has."""

    def __init__(self) -> None:
        self._connections = _Connections()

    async def publish(self, destination: Destination, message: Message) -> str:
        client = await self._connections.get(destination, self._open)
        subject = filled(destination.config["subject"], message.event_type, message.ordering_key)
        headers = {**dict(message.headers), "Nats-Msg-Id": message.message_id,
                   "Content-Type": message.content_type}  # fmt: skip
        try:
            ack = await client.jetstream().publish(subject, message.body, headers=headers)
        except NoStreamResponseError as exc:
            raise BrokerRefused(f"no JetStream stream captures {subject!r}") from exc
        except Exception:
            await self._connections.drop(destination, _close_nats)
            raise
        again = " (a duplicate: the stream had it)" if ack.duplicate else ""
        return f"acknowledged by JetStream stream {ack.stream}, sequence {ack.seq}{again}"

    async def _open(self, destination: Destination) -> Any:
        user, _, password = (destination.credentials or "").partition(":")
        options: dict[str, Any] = {"allow_reconnect": False, "connect_timeout": 5}
        if user:
            options |= {"user": user, "password": password}
        return await nats.connect(destination.reach(), **options)

    async def close(self) -> None:
        await self._connections.close_all(_close_nats)


async def _close_nats(client: Any) -> None:
    await client.close()


class RedisStreams:
    """XADD with MAXLEN ~: the entry id Redis answers is the acknowledgement."""

    def __init__(self) -> None:
        self._connections = _Connections()

    async def publish(self, destination: Destination, message: Message) -> str:
        client = await self._connections.get(destination, self._open)
        config = destination.config
        fields: dict[str, Any] = dict(message.headers)
        fields |= {"content-type": message.content_type, "message-id": message.message_id,
                   "body": message.body}  # fmt: skip
        try:
            entry = await client.xadd(config["stream"], fields, maxlen=config["maxlen"],
                                      approximate=True)  # fmt: skip
        except aioredis.ResponseError as exc:
            raise BrokerRefused(f"Redis refused the entry: {exc}") from exc
        except Exception:
            await self._connections.drop(destination, _close_redis)
            raise
        entry_id = entry.decode() if isinstance(entry, bytes) else str(entry)
        return f"added to Redis stream {config['stream']} as {entry_id}"

    async def _open(self, destination: Destination) -> Any:
        """A pool that makes a publish wait for a free connection (redis-py's default pool
        refuses the 101st concurrent command): every endpoint on this Redis shares it."""
        user, _, password = (destination.credentials or "").partition(":")
        pool = aioredis.BlockingConnectionPool.from_url(
            destination.reach(), username=user or None, password=password or None,
            socket_connect_timeout=5, socket_timeout=10, max_connections=REDIS_CONNECTIONS,
            timeout=10,
        )  # fmt: skip
        return aioredis.Redis.from_pool(pool)

    async def close(self) -> None:
        await self._connections.close_all(_close_redis)


async def _close_redis(client: Any) -> None:
    await client.aclose()
