"""Queue ingest against the real brokers on this machine: usage completions, charges and events
consumed from a RabbitMQ queue, a NATS JetStream consumer and a Redis stream group are taken as
their HTTP routes take them (same validation, pricing, idempotency), acknowledged only once
committed; what can never be accepted is dead-lettered with its error — kept for the console,
counted in /metrics, put on the source's dead-letter queue — and never blocks the queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest

from app import jsoncodec
from app.config import IngestSource
from app.ingest.rabbitmq import RabbitMQConsumer
from app.testing import Receiver
from subscribers.receiver import WebhookReceiver
from tests.backends import rows
from tests.brokers import AMQP, NATS, REDIS, SEED, name
from tests.conftest import API_KEY, HubClient, seed_parameters
from tests.console import ConsoleBrowser
from tests.test_billing import completion
from tests.waiting import until

pytestmark = pytest.mark.brokers


class Rabbit:
    """A durable queue and its dead-letter queue, deleted at the end."""

    def __init__(self, channel: Any, queue: Any, dead: Any) -> None:
        self.channel, self.queue, self.dead = channel, queue, dead

    async def send(self, body: bytes, **properties: Any) -> None:
        message = aio_pika.Message(
            body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **properties
        )
        await self.channel.default_exchange.publish(message, routing_key=self.queue.name)

    async def left(self) -> int:
        """Messages still in the queue: ready, or taken and not acknowledged."""
        declared = await self.channel.declare_queue(self.queue.name, passive=True)
        return int(declared.declaration_result.message_count)


@pytest.fixture
async def rabbit() -> AsyncIterator[Rabbit]:
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel()
    queue = await channel.declare_queue(name("bh-ingest"), durable=True)
    dead = await channel.declare_queue(f"{queue.name}.dead", durable=True)
    yield Rabbit(channel, queue, dead)
    await queue.delete(if_unused=False, if_empty=False)
    await dead.delete(if_unused=False, if_empty=False)
    await connection.close()


async def ingesting(hub_factory: Callable[..., Any], line: str) -> HubClient:
    hub: HubClient = await hub_factory(ingest=line)
    assert hub.hub.ingest is not None and hub.hub.background is not None
    return hub


async def billed(hub: HubClient) -> list[str]:
    listed = (await hub.http.get("/v1/billing-information?limit=500")).json()["data"]
    return sorted(b["transactionId"] for b in listed)


async def test_usage_on_a_nats_subject_reaches_a_webhook_endpoint_as_billing_information(
    hub_factory: Callable[..., Any], jetstream: tuple[str, Any]
):
    """The issue's "done when": usage published to NATS is priced, stored, and delivered
    signed to a real receiver; the consumer has nothing left to acknowledge."""
    stream, js = jetstream
    subject = f"{stream.lower()}.usage"
    hub = await ingesting(
        hub_factory, f"usage_completions {NATS} stream={stream} subject={subject}"
    )
    app = WebhookReceiver()
    async with Receiver(app.app, "/webhooks") as server:
        endpoint = await hub.endpoint(server.url)
        app.set_secret(endpoint["secret"])
        await js.publish(subject, jsoncodec.dumps(completion(transactionId="trip-1")))
        await until(lambda: billed(hub), what="the usage billed")
        await until(lambda: hub.drain(), what="the event delivered")
        [received] = app.inbox.latest()
    assert received["type"] == SEED
    assert received["payload"]["parameters"]["transactionId"] == "trip-1"
    info = await js.consumer_info(stream, "billhook")
    await until(lambda: _settled(js, stream), what="the message acknowledged")
    assert info.num_redelivered == 0


async def _settled(js: Any, stream: str) -> bool:
    info = await js.consumer_info(stream, "billhook")
    return bool(info.num_ack_pending == 0 and info.num_pending == 0)


async def test_rabbitmq_usage_is_billed_once_per_transaction_and_acknowledged(
    hub_factory: Callable[..., Any], rabbit: Rabbit
):
    """The same transactionId twice is one billing (the second is a repeat); every message
    is acknowledged, so the queue ends empty."""
    source = name("rabbit-usage")
    hub = await ingesting(
        hub_factory, f"usage_completions {AMQP} queue={rabbit.queue.name} name={source}"
    )
    for n in range(30):
        await rabbit.send(jsoncodec.dumps(completion(transactionId=f"r-{n}")))
    await rabbit.send(jsoncodec.dumps(completion(transactionId="r-0")))
    await until(lambda: _count_is(hub, 30), what="30 billed")
    await until(lambda: _empty(rabbit), what="the queue emptied")
    assert await billed(hub) == sorted(f"r-{n}" for n in range(30))
    metrics = (await hub.http.get("/metrics")).text
    assert _metric(metrics, source, "accepted") == 30
    assert _metric(metrics, source, "repeated") == 1


async def test_a_rabbitmq_queue_deleted_and_declared_again_is_consumed_again(
    hub_factory: Callable[..., Any], rabbit: Rabbit
):
    """Deleting the queue ends the hub's consumer (RabbitMQ cancels it): the hub opens a new
    one, so usage sent to the queue declared again is billed, with no hub restart. (The
    consumer used to wait on the cancelled one for good.)"""
    hub = await ingesting(hub_factory, f"usage_completions {AMQP} queue={rabbit.queue.name}")
    await rabbit.send(jsoncodec.dumps(completion(transactionId="before")))
    await until(lambda: _count_is(hub, 1), what="billed before")
    await rabbit.queue.delete(if_unused=False, if_empty=False)
    rabbit.queue = await rabbit.channel.declare_queue(rabbit.queue.name, durable=True)
    await rabbit.send(jsoncodec.dumps(completion(transactionId="after")))
    await until(lambda: _count_is(hub, 2), what="billed from the queue declared again")
    assert await billed(hub) == ["after", "before"]


async def test_a_deleted_jetstream_consumer_is_made_again_and_consumed(
    hub_factory: Callable[..., Any], jetstream: tuple[str, Any]
):
    """Deleting the hub's durable consumer under a running ingest: the hub notices on its
    next empty wait, makes the consumer again and bills what follows; what it reads twice
    is a repeat, billed once. (nats-py's fetch only timed out on a deleted consumer, for good.)"""
    stream, js = jetstream
    subject = f"{stream.lower()}.usage"
    hub = await ingesting(
        hub_factory, f"usage_completions {NATS} stream={stream} subject={subject}"
    )
    await js.publish(subject, jsoncodec.dumps(completion(transactionId="before")))
    await until(lambda: _count_is(hub, 1), what="billed before")
    await js.delete_consumer(stream, "billhook")
    await js.publish(subject, jsoncodec.dumps(completion(transactionId="after")))
    await until(lambda: _count_is(hub, 2), what="billed through the consumer made again")
    assert await billed(hub) == ["after", "before"]


async def test_a_deleted_redis_stream_is_consumed_again_once_it_is_back(
    hub_factory: Callable[..., Any], redis_client: Any
):
    """Deleting the stream (and with it the hub's consumer group) under a running ingest:
    the hub's read fails, it opens again (making the group at the stream's start) and bills
    what is added afterwards."""
    stream = name("bh-deleted")
    hub = await ingesting(hub_factory, f"usage_completions {REDIS} stream={stream}")
    try:
        await redis_client.xadd(stream, {"body": jsoncodec.dumps(completion(transactionId="a"))})
        await until(lambda: _count_is(hub, 1), what="billed before")
        await redis_client.delete(stream)
        await redis_client.xadd(stream, {"body": jsoncodec.dumps(completion(transactionId="b"))})
        await until(lambda: _count_is(hub, 2), what="billed from the stream made again")
        assert await billed(hub) == ["a", "b"]
    finally:
        await redis_client.delete(stream)


async def _count_is(hub: HubClient, n: int) -> bool:
    return len(await billed(hub)) == n


async def _empty(rabbit: Rabbit) -> bool:
    return await rabbit.left() == 0


def _metric(text: str, source: str, outcome: str) -> float:
    wanted = f'billhook_ingest_messages_total{{outcome="{outcome}",source="{source}"}}'
    for line in text.splitlines():
        if line.startswith(wanted):
            return float(line.split()[-1])
    return 0.0


async def test_charges_from_a_redis_stream_are_keyed_by_the_entry_when_they_name_no_id(
    hub_factory: Callable[..., Any], redis_client: Any
):
    """A charge without transactionId is keyed by its stream entry: read twice (redelivered
    after a crash), it is billed once. The group has nothing pending once committed."""
    stream = name("bh-ingest-charges")
    hub = await ingesting(hub_factory, f"charges {REDIS} stream={stream} group=g")
    charge = completion(reason="penalty")
    del charge["transactionId"]
    entry = (await redis_client.xadd(stream, {"body": jsoncodec.dumps(charge)})).decode()
    await until(lambda: _count_is(hub, 1), what="the charge billed")
    assert await billed(hub) == [entry]
    await until(lambda: _nothing_pending(redis_client, stream), what="the entry acknowledged")
    await redis_client.delete(stream)


async def _nothing_pending(client: Any, stream: str) -> bool:
    return int((await client.xpending(stream, "g"))["pending"]) == 0


async def test_events_from_rabbitmq_keep_their_own_id_or_take_the_message_id(
    hub_factory: Callable[..., Any], rabbit: Rabbit
):
    hub = await ingesting(hub_factory, f"events {AMQP} queue={rabbit.queue.name}")
    await rabbit.send(
        jsoncodec.dumps({"type": SEED, "parameters": seed_parameters(), "id": "own-id"})
    )
    await rabbit.send(
        jsoncodec.dumps({"type": SEED, "parameters": seed_parameters({"transactionId": "2"})}),
        message_id="m-7",
    )
    await rabbit.send(
        jsoncodec.dumps({"type": SEED, "parameters": seed_parameters({"transactionId": "2"})}),
        message_id="m-7",
    )
    database = hub.hub.settings.database_url

    async def stored() -> list[Any]:
        return await rows(database, "SELECT idempotency_key FROM events ORDER BY 1")

    await until(lambda: _has(stored, 2), what="two events")
    await until(lambda: _empty(rabbit), what="all three acknowledged")
    assert await stored() == [("m-7",), ("own-id",)]


async def _has(read: Callable[[], Any], n: int) -> bool:
    return len(await read()) == n


@pytest.mark.parametrize("broker", ["rabbitmq", "nats", "redis"])
async def test_poison_messages_are_dead_lettered_and_never_block_the_queue(
    broker: str,
    hub_factory: Callable[..., Any],
    rabbit: Rabbit,
    jetstream: tuple[str, Any],
    redis_client: Any,
):
    """Not JSON, invalid (422) and a conflicting repeat (409) go to the dead letters with
    their error — kept for the console, counted, and on the source's dead-letter queue —
    while the good message behind them is billed; all are acknowledged."""
    source, send, dead_letters = await _poison_source(broker, rabbit, jetstream, redis_client)
    source_name = name("poisoned")
    hub = await ingesting(hub_factory, f"usage_completions {source} name={source_name}")
    for body in (
        b"{not json",
        jsoncodec.dumps({"transactionId": "x"}),
        jsoncodec.dumps(completion(transactionId="ok-1")),
        jsoncodec.dumps(completion(transactionId="ok-1", customerNumber="C-2")),
        jsoncodec.dumps(completion(transactionId="ok-2")),
    ):
        await send(body)
    await until(lambda: _count_is(hub, 2), what="the good ones billed")
    database = hub.hub.settings.database_url

    async def kept() -> list[Any]:
        return await rows(database, "SELECT error FROM dead_letters ORDER BY id")

    await until(lambda: _has(kept, 3), what="three dead letters kept")
    codes = [jsoncodec.loads(e)["code"] for (e,) in await kept()]
    assert codes == ["invalid_json", "validation_error", "conflict"]
    letters = await dead_letters(3)
    assert [jsoncodec.loads(x)["error"]["code"] for x in letters] == codes
    assert jsoncodec.loads(letters[0])["message"] == "{not json"
    metrics = (await hub.http.get("/metrics")).text
    assert _metric(metrics, source_name, "dead_lettered") == 3
    async with ConsoleBrowser(hub.app) as console:
        await console.sign_in(API_KEY)
        page = await console.get("/console/dead-letters")
    assert page.status_code == 200 and "invalid_json" in page.text and source_name in page.text


async def _poison_source(
    broker: str, rabbit: Rabbit, jetstream: tuple[str, Any], redis_client: Any
) -> tuple[str, Callable[[bytes], Any], Callable[[int], Any]]:
    """The source line's broker part, how to send, how to read n dead letters back."""
    if broker == "rabbitmq":

        async def dead_rabbit(n: int) -> list[bytes]:
            got = [await rabbit.dead.get(timeout=5) for _ in range(n)]
            return [m.body for m in got]

        line = f"{AMQP} queue={rabbit.queue.name} dead_letter={rabbit.dead.name}"
        return line, rabbit.send, dead_rabbit
    if broker == "nats":
        stream, js = jetstream
        subject = f"{stream.lower()}.usage"

        async def dead_nats(n: int) -> list[bytes]:
            subscription = await js.pull_subscribe(f"{stream.lower()}.dead", durable=None)
            return [m.data for m in await subscription.fetch(n, timeout=5)]

        async def send_nats(body: bytes) -> None:
            await js.publish(subject, body)

        line = f"{NATS} stream={stream} subject={subject} dead_letter={stream.lower()}.dead"
        return line, send_nats, dead_nats
    stream = name("bh-ingest-poison")

    async def dead_redis(n: int) -> list[bytes]:
        await until(lambda: _length_is(redis_client, f"{stream}.dead", n), what="dead letters")
        return [f[b"body"] for _, f in await redis_client.xrange(f"{stream}.dead")]

    async def send_redis(body: bytes) -> None:
        await redis_client.xadd(stream, {"body": body})

    return f"{REDIS} stream={stream} dead_letter={stream}.dead", send_redis, dead_redis


async def _length_is(client: Any, stream: str, n: int) -> bool:
    return int(await client.xlen(stream)) == n


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (AMQP.replace("guest:guest@", "guest:not-the-password@"), "ACCESS_REFUSED"),
        ("amqp://guest:not-the-password@127.0.0.1:1/", "Connection refused"),
    ],
    ids=["refused-login", "nothing-listening"],
)
async def test_a_rabbitmq_source_that_cannot_open_says_why_without_its_password(
    url: str, said: str
):
    """What the runner logs of a source it cannot open names the broker's reason (a refused
    login, nothing listening) and never the URL's credentials; closing it afterwards is safe."""
    consumer = RabbitMQConsumer(IngestSource(kind="events", broker="rabbitmq", url=url,
                                             options=(("queue", "q"),)))  # fmt: skip
    with pytest.raises(ConnectionError) as failed:
        await consumer.open()
    assert said in str(failed.value) and "not-the-password" not in str(failed.value)
    await consumer.close()
