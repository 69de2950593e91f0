"""Reference consumers for billhook's broker destinations: verify, de-duplicate, store, ack.

    python -m subscribers.brokers rabbitmq amqp://guest:guest@127.0.0.1:5672/ --queue billing \\
        --secret whsec_... [--db received.db]
    python -m subscribers.brokers nats nats://127.0.0.1:4222 --subject 'billing.>' --durable shop
    python -m subscribers.brokers redis redis://127.0.0.1:6379/0 --stream billing --group shop ...

Every message carries the body and the Standard Webhooks headers a webhook has (`webhook-id`,
`webhook-timestamp`, `webhook-signature`): AMQP headers, NATS headers, or fields of the Redis
stream entry beside `body`. So verify.py serves every type unchanged. Each message is stored
once per webhook-id (receiver.py's Inbox) and acknowledged only after it is stored: a crash
before the ack redelivers it, and the inbox answers the repeat. A message whose signature fails
is dropped (rejected without requeue, terminated, acknowledged): it did not come from billhook.

A queue may hold a message for a while (your consumer was down), so the timestamp tolerance here
is the longest you let messages wait (default 7 days), not the 5 minutes an HTTP receiver uses.
Depends on aio-pika, nats-py or redis-py (only the one you use) and nothing from billhook.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from subscribers.receiver import Inbox
from subscribers.verify import Verifier, WebhookVerificationError, parse

log = logging.getLogger("subscribers.brokers")
QUEUE_TOLERANCE_S = 7 * 24 * 3600


class Handler:
    """What every consumer does with one message; True when it may be acknowledged."""

    def __init__(self, verifier: Verifier, inbox: Inbox) -> None:
        self.verifier = verifier
        self.inbox = inbox

    def handle(self, body: bytes, headers: Mapping[str, Any]) -> bool:
        text = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}
        try:
            webhook_id = self.verifier.verify(body, text)
        except WebhookVerificationError as exc:
            log.warning("dropped a message that is not billhook's: %s", exc)
            return False
        if self.inbox.add(webhook_id, str(parse(body).get("type", "")), body):
            log.info("stored %s", webhook_id)  # act on it here: first time only
        return True


async def rabbitmq(url: str, queue: str, handler: Handler, stop: asyncio.Event) -> None:
    """Consume an existing queue bound to the endpoint's exchange/routing key."""
    import aio_pika

    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)

        async def on_message(message: Any) -> None:
            if handler.handle(message.body, message.headers or {}):
                await message.ack()
            else:
                await message.reject(requeue=False)

        await (await channel.get_queue(queue)).consume(on_message)
        await stop.wait()


async def nats(url: str, subject: str, durable: str, handler: Handler, stop: asyncio.Event) -> None:
    """A durable pull consumer on the stream that captures the endpoint's subject (a wildcard
    such as `billing.>` takes every ordering key's subject)."""
    import nats as nats_client
    from nats.errors import TimeoutError as FetchTimeout

    client = await nats_client.connect(url)
    try:
        subscription = await client.jetstream().pull_subscribe(subject, durable=durable)
        while not stop.is_set():
            with contextlib.suppress(FetchTimeout):
                for message in await subscription.fetch(100, timeout=1):
                    ok = handler.handle(message.data, message.headers or {})
                    await (message.ack() if ok else message.term())
    finally:
        await client.close()


async def redis(url: str, stream: str, group: str, handler: Handler, stop: asyncio.Event) -> None:
    """A consumer group on the endpoint's stream (created at the stream's start if missing)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        with contextlib.suppress(aioredis.ResponseError):  # BUSYGROUP: it exists
            await client.xgroup_create(stream, group, id="0", mkstream=True)
        while not stop.is_set():
            # "0" first: what this consumer read but never acknowledged (it crashed), then new.
            for start in ("0", ">"):
                batches: Any = await client.xreadgroup(group, "ref", {stream: start}, 100, 1000)
                for _, entries in batches:
                    for entry_id, fields in entries:
                        body = fields.pop(b"body", b"")
                        handler.handle(body, {k.decode(): v for k, v in fields.items()})
                        await client.xack(stream, group, entry_id)
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("broker", choices=["rabbitmq", "nats", "redis"])
    parser.add_argument("url")
    parser.add_argument("--secret", action="append", required=True, help="whsec_… (repeatable)")
    parser.add_argument("--queue", help="RabbitMQ queue")
    parser.add_argument("--subject", help="NATS subject (wildcards allowed)")
    parser.add_argument("--stream", help="Redis stream")
    parser.add_argument("--durable", default="billhook-reference", help="NATS durable consumer")
    parser.add_argument("--group", default="billhook-reference", help="Redis consumer group")
    parser.add_argument("--db", default=":memory:")
    parser.add_argument("--tolerance", type=int, default=QUEUE_TOLERANCE_S)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    handler = Handler(Verifier(args.secret, args.tolerance), Inbox(args.db))
    stop = asyncio.Event()
    if args.broker == "rabbitmq":
        asyncio.run(rabbitmq(args.url, args.queue, handler, stop))
    elif args.broker == "nats":
        asyncio.run(nats(args.url, args.subject, args.durable, handler, stop))
    else:
        asyncio.run(redis(args.url, args.stream, args.group, handler, stop))


if __name__ == "__main__":
    main()
