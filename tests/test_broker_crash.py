"""Crashes around the real brokers, with real `billhook` processes: a hub SIGKILLed between
queue ingest's commit and its acknowledgement (the message comes again; idempotency bills it
once), a hub SIGKILLed while publishing to a merchant's broker (at-least-once, the same
`webhook-id`), and a broker stopped under load and started again (nothing it acknowledged is
lost, the backlog follows)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import nats
import pytest
import redis.asyncio as aioredis
from nats.js.api import StreamConfig

from app import jsoncodec
from subscribers.verify import Verifier
from tests.backends import rows
from tests.processes import KEY, HubProcess, hub_process
from tests.test_billing import completion
from tests.test_ingest import AMQP, NATS, REDIS, name
from tests.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.brokers]
MESSAGES = 40
RETRY_FOR_A_MINUTE = ",".join(["1s"] * 60)


class Broker:
    """One broker's side of an ingest source: publish usage, read what is left to settle."""

    line: str
    queue: str = ""
    send: Callable[[bytes], Awaitable[None]]
    unsettled: Callable[[], Awaitable[int]]

    async def released(self) -> bool:
        """The consumer's connection is gone, and what it held unacknowledged is back."""
        return True


async def _rabbit(stack: list[Any], queue: str | None = None) -> Broker:
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel()
    declared = await channel.declare_queue(queue or name("bh-crash"), durable=True)
    stack.append(lambda: _close_rabbit(connection, channel, declared))
    broker = Broker()
    broker.queue = declared.name
    broker.line = f"{AMQP} queue={declared.name}"

    async def send(body: bytes) -> None:
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, routing_key=declared.name)

    async def unsettled() -> int:
        """Ready messages only: one delivered to a consumer and not yet acknowledged is not
        counted until its consumer goes (then RabbitMQ requeues it)."""
        found = await channel.declare_queue(declared.name, passive=True)
        return int(found.declaration_result.message_count)

    async def released() -> bool:
        found = await channel.declare_queue(declared.name, passive=True)
        return int(found.declaration_result.consumer_count) == 0

    broker.send, broker.unsettled = send, unsettled
    broker.released = released  # type: ignore[method-assign]
    return broker


async def _close_rabbit(connection: Any, channel: Any, queue: Any) -> None:
    if channel.is_closed:  # the broker restarted: the queue is deleted by a later connection
        return
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()


async def _nats(stack: list[Any]) -> Broker:
    client = await nats.connect(NATS)
    js = client.jetstream()
    stream = name("BHCRASH").upper()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream.lower()}.>"]))
    stack.append(lambda: _close_nats(client, js, stream))
    broker = Broker()
    broker.line = f"{NATS} stream={stream} subject={stream.lower()}.usage redeliver_after=2s"

    async def send(body: bytes) -> None:
        await js.publish(f"{stream.lower()}.usage", body)

    async def unsettled() -> int:
        info = await js.consumer_info(stream, "billhook")
        return int(info.num_ack_pending + info.num_pending)

    broker.send, broker.unsettled = send, unsettled
    return broker


async def _close_nats(client: Any, js: Any, stream: str) -> None:
    await js.delete_stream(stream)
    await client.close()


async def _redis(stack: list[Any]) -> Broker:
    client = aioredis.Redis.from_url(REDIS)
    stream = name("bh-crash")
    stack.append(lambda: _close_redis(client, stream))
    broker = Broker()
    broker.line = f"{REDIS} stream={stream} group=g redeliver_after=1s"

    async def send(body: bytes) -> None:
        await client.xadd(stream, {"body": body})

    async def unsettled() -> int:
        groups = await client.xinfo_groups(stream)
        return int(groups[0]["pending"] + (groups[0]["lag"] or 0)) if groups else MESSAGES

    broker.send, broker.unsettled = send, unsettled
    return broker


async def _close_redis(client: Any, stream: str) -> None:
    await client.delete(stream)
    await client.aclose()


@pytest.fixture
async def cleanup() -> AsyncIterator[list[Any]]:
    stack: list[Any] = []
    yield stack
    for close in reversed(stack):
        await close()


@pytest.mark.parametrize("make", [_rabbit, _nats, _redis], ids=["rabbitmq", "nats", "redis"])
async def test_a_hub_killed_between_commit_and_ack_bills_each_message_once(
    make: Callable[[list[Any]], Awaitable[Broker]], cleanup: list[Any], tmp_path: Path
):
    broker = await make(cleanup)
    for n in range(MESSAGES):
        await broker.send(jsoncodec.dumps(completion(transactionId=f"k-{n}")))
    database = f"sqlite:///{tmp_path}/ingest.db"
    line = f"usage_completions {broker.line} batch=10"
    async with hub_process(
        database, "ingest", BILLHOOK_INGEST=line, BILLHOOK_TEST_FAILPOINT="ingest-after-commit"
    ) as hub:
        assert await asyncio.wait_for(hub.proc.wait(), 30) == -signal.SIGKILL
    committed = await _billed(database)
    assert 0 < len(committed) <= 10, "the first batch is committed, and was never acknowledged"
    # the broker notices the dead connection a moment later (RabbitMQ requeues then)
    await until(lambda: _unsettled_is(broker, MESSAGES), 10, what="nothing acknowledged")
    async with hub_process(database, "ingest", BILLHOOK_INGEST=line):
        await until(lambda: _billed_at_least(database, MESSAGES), 60, what="every message billed")
        await until(lambda: _all_settled(broker), 60, what="none left to deliver")
    await _each_billed_once_and_acknowledged(broker, database)


async def _each_billed_once_and_acknowledged(broker: Broker, database: str) -> None:
    """Once the hub has stopped: k-0 … k-39 billed once each, and nothing left unacknowledged.
    RabbitMQ counts a message the hub holds unacknowledged as settled until the hub's consumer
    is gone: only then does "none left" mean "every one acknowledged"."""
    await until(broker.released, 10, what="the hub's consumer gone")
    assert await broker.unsettled() == 0, "a message was never acknowledged"
    billed = await _billed(database)
    assert sorted(billed) == sorted(f"k-{n}" for n in range(MESSAGES))  # once each


async def test_ingest_reconnects_when_rabbitmq_restarts_and_bills_each_message_once(
    cleanup: list[Any], tmp_path: Path
):
    """RabbitMQ stopped and started under a running ingest: the hub notices, reconnects on its
    own (no restart), and bills what was sent before and after the outage once each."""
    broker = await _rabbit(cleanup)
    database = f"sqlite:///{tmp_path}/reconnect.db"
    line = f"usage_completions {broker.line} batch=10"
    for n in range(MESSAGES // 2):
        await broker.send(jsoncodec.dumps(completion(transactionId=f"k-{n}")))
    async with hub_process(database, "ingest", BILLHOOK_INGEST=line):
        await until(lambda: _billed_at_least(database, MESSAGES // 2), 60, what="before")
        await _rabbitmqctl("stop_app")
        await _rabbitmqctl("start_app")
        broker = await _rabbit(cleanup, queue=broker.queue)  # the test's own connection died too
        for n in range(MESSAGES // 2, MESSAGES):
            await broker.send(jsoncodec.dumps(completion(transactionId=f"k-{n}")))
        await until(lambda: _billed_at_least(database, MESSAGES), 90, what="after the restart")
        await until(lambda: _all_settled(broker), 30, what="none left to deliver")
    await _each_billed_once_and_acknowledged(broker, database)


async def _billed(database: str) -> list[str]:
    found = await rows(database, "SELECT transaction_id FROM billing_information")
    return [r[0] for r in found]


async def _billed_at_least(database: str, n: int) -> bool:
    return len(await _billed(database)) >= n


async def _all_settled(broker: Broker) -> bool:
    return await _unsettled_is(broker, 0)


async def _unsettled_is(broker: Broker, n: int) -> bool:
    return await broker.unsettled() == n


class Consumer:
    """The merchant's side of a RabbitMQ endpoint: verifies each message's signature and
    counts every webhook-id it sees (a repeat is allowed, a loss is not)."""

    def __init__(self, queue_name: str) -> None:
        self.queue_name = queue_name
        self.seen: dict[str, int] = {}
        self.verifier: Verifier | None = None

    async def run(self) -> None:
        """Consume until cancelled, reconnecting while the broker is away."""
        while True:
            try:
                await self._consume()
            except (aio_pika.exceptions.AMQPError, OSError):  # aiormq's errors are these
                await asyncio.sleep(0.2)  # the broker is stopped: try again

    async def _consume(self) -> None:
        connection = await aio_pika.connect(AMQP)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.queue_name, durable=True)
            async with queue.iterator() as messages:
                async for message in messages:
                    assert self.verifier is not None
                    headers = {k: str(v) for k, v in (message.headers or {}).items()}
                    webhook_id = self.verifier.verify(message.body, headers)
                    self.seen[webhook_id] = self.seen.get(webhook_id, 0) + 1
                    await message.ack()


@pytest.fixture
async def merchant() -> AsyncIterator[Consumer]:
    consumer = Consumer(name("bh-merchant"))
    async with await aio_pika.connect(AMQP) as connection:
        channel = await connection.channel()
        await channel.declare_queue(consumer.queue_name, durable=True)
    task = asyncio.create_task(consumer.run())
    yield consumer
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with await aio_pika.connect(AMQP) as connection:  # the broker may have restarted
        channel = await connection.channel()
        await channel.queue_delete(consumer.queue_name)


def _client(hub: HubProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=str(hub.url), headers={"authorization": f"Bearer {KEY}"})


async def _register_and_publish(
    client: httpx.AsyncClient, merchant: Consumer, n: int, ordered: bool = False
) -> dict[str, str]:
    """`n` events (five ordering keys) to a RabbitMQ endpoint: event id → its key, in the
    order they were accepted."""
    endpoint = await client.post(
        "/v1/endpoints",
        json={
            "type": "rabbitmq",
            "url": AMQP,
            "rate_limit_per_s": 100,
            "ordered": ordered,
            "config": {"exchange": "", "routing_key": merchant.queue_name},
        },
    )
    assert endpoint.status_code == 201, endpoint.text
    merchant.verifier = Verifier(endpoint.json()["secret"])
    accepted: dict[str, str] = {}
    await client.post("/v1/event-types", json={"name": "t"})
    for start in range(0, n, 500):
        items = [{"type": "t", "parameters": {"n": k}, "ordering_key": f"k{k % 5}"}
                 for k in range(start, start + 500)]  # fmt: skip
        answer = await client.post("/v1/events/batch", json={"items": items})
        for item, result in zip(items, answer.json()["results"], strict=True):
            accepted[result["result"]["id"]] = item["ordering_key"]
    return accepted


async def test_a_hub_killed_mid_publish_delivers_every_event_with_its_webhook_id(
    merchant: Consumer, tmp_path: Path
):
    database = f"sqlite:///{tmp_path}/publish.db"
    async with hub_process(database) as hub:
        async with httpx.AsyncClient(
            base_url=str(hub.url), headers={"authorization": f"Bearer {KEY}"}
        ) as client:
            accepted = await _register_and_publish(client, merchant, 1000)
        await until(lambda: len(merchant.seen) >= 150, 30, what="publishing under way")
        hub.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(hub.proc.wait(), 10)
    assert len(merchant.seen) < len(accepted), "the kill must land mid-publish"
    async with hub_process(database):
        await until(lambda: set(merchant.seen) >= set(accepted), 60, what="every event, again")
    assert set(merchant.seen) == set(accepted)


async def test_a_broker_stopped_under_load_gets_its_backlog_when_it_returns(
    merchant: Consumer, tmp_path: Path
):
    """RabbitMQ stopped while 1,000 events flow to an ordered endpoint: the hub's attempts
    fail (retried on the schedule); started again, everything arrives — what it had confirmed
    before the stop survived it (a durable queue), the rest follows, each key in order."""
    database = f"sqlite:///{tmp_path}/outage.db"
    hub_running = hub_process(database, BILLHOOK_RETRY_SCHEDULE=RETRY_FOR_A_MINUTE)
    async with hub_running as hub, _client(hub) as client:
        accepted = await _register_and_publish(client, merchant, 1000, ordered=True)
        await until(lambda: len(merchant.seen) >= 150, 30, what="publishing under way")
        await _rabbitmqctl("stop_app")
        try:
            await until(lambda: _failing(client), 30, what="attempts failing in the outage")
        finally:
            await _rabbitmqctl("start_app")
        await until(lambda: set(merchant.seen) >= set(accepted), 90, what="the backlog")
    assert set(merchant.seen) == set(accepted)
    for key in {f"k{n}" for n in range(5)}:  # first arrivals (seen keeps them in order)
        arrived = [i for i in merchant.seen if accepted[i] == key]
        assert arrived == [i for i, k in accepted.items() if k == key], key


async def _failing(client: httpx.AsyncClient) -> bool:
    metric = 'billhook_delivery_attempts_total{outcome="connect_error"}'
    lines = (await client.get("/metrics")).text.splitlines()
    return any(line.startswith(metric) and float(line.split()[-1]) > 0 for line in lines)


async def _rabbitmqctl(command: str) -> None:
    done = await asyncio.to_thread(
        subprocess.run, ["rabbitmqctl", command], capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
