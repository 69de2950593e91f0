"""Endpoints that are a merchant's own broker — a RabbitMQ exchange, a NATS JetStream subject,
a Redis stream — against the real brokers on this machine: each gets the same body and
Standard Webhooks signature (verified here by subscribers/verify.py, the merchant's file), done
only once the broker confirmed; a broker that refuses or cannot be reached is an attempt
failure; credentials never leave the hub; CloudEvents on request, for webhooks too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from app import jsoncodec
from app.delivery.brokers import Message, RedisStreams
from app.destinations import Destination
from subscribers.verify import Verifier
from tests.backends import rows
from tests.brokers import AMQP, NATS, REDIS, SEED, name
from tests.conftest import API_KEY, HubClient, seed_parameters
from tests.console import ConsoleBrowser

pytestmark = pytest.mark.brokers


@pytest.fixture
async def queue() -> AsyncIterator[tuple[str, Any]]:
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel()
    declared = await channel.declare_queue(name("bh-test"), auto_delete=True)
    yield declared.name, declared
    await connection.close()


@pytest.fixture
async def stream(jetstream: tuple[str, Any]) -> tuple[str, Any]:
    """A subject the test's own stream captures."""
    stream_name, js = jetstream
    return f"{stream_name.lower()}.events", js


async def delivered(hub: HubClient, event_id: str) -> dict[str, Any]:
    await hub.drain()
    [delivery] = (await hub.http.get(f"/v1/events/{event_id}")).json()["deliveries"]
    attempts = (await hub.http.get(f"/v1/deliveries/{delivery['id']}/attempts")).json()["data"]
    return {**delivery, "attempts_seen": attempts}


def text_headers(headers: dict[str, Any]) -> dict[str, str]:
    return {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}


async def test_rabbitmq_gets_the_signed_body_once_the_broker_confirmed(
    hub: HubClient, queue: tuple[str, Any]
):
    queue_name, declared = queue
    endpoint = await hub.endpoint(AMQP, type="rabbitmq",
                                  config={"exchange": "", "routing_key": queue_name})  # fmt: skip
    assert endpoint["url"] == "amqp://127.0.0.1:5672/" and endpoint["has_credentials"]
    assert "guest" not in jsoncodec.dumps(endpoint).decode().replace('"has_credentials"', "")
    event = await hub.publish(SEED, seed_parameters({"customerNumber": "C-1"}))
    found = await delivered(hub, event["id"])
    assert found["status"] == "succeeded"
    assert "confirmed by RabbitMQ" in found["attempts_seen"][0]["response_body"]
    message = await declared.get(timeout=5)
    assert message.message_id == found["id"] and message.content_type == "application/json"
    assert (
        Verifier(endpoint["secret"]).verify(message.body, text_headers(message.headers))
        == event["id"]
    )
    assert jsoncodec.loads(message.body)["type"] == SEED


async def test_nats_jetstream_acknowledges_and_keeps_one_copy_of_a_retried_message(
    hub: HubClient, stream: tuple[str, Any]
):
    subject, js = stream
    endpoint = await hub.endpoint(NATS, type="nats", config={"subject": subject})
    event = await hub.publish(SEED, seed_parameters({"customerNumber": "C-1"}))
    found = await delivered(hub, event["id"])
    assert found["status"] == "succeeded"
    assert "acknowledged by JetStream" in found["attempts_seen"][0]["response_body"]
    subscription = await js.pull_subscribe(subject, durable=None)
    [message] = await subscription.fetch(1, timeout=5)
    assert Verifier(endpoint["secret"]).verify(message.data, message.headers) == event["id"]


async def test_a_redis_stream_gets_an_entry_trimmed_to_its_length(
    hub: HubClient, redis_client: Any
):
    key = name("bh-test-stream")
    endpoint = await hub.endpoint(REDIS, type="redis", config={"stream": key, "maxlen": 1000})
    event = await hub.publish(SEED, seed_parameters({"customerNumber": "C-1"}))
    found = await delivered(hub, event["id"])
    assert found["status"] == "succeeded"
    [(entry_id, fields)] = await redis_client.xrange(key)
    assert entry_id.decode() in found["attempts_seen"][0]["response_body"]
    headers = text_headers({k.decode(): v for k, v in fields.items() if k != b"body"})
    assert Verifier(endpoint["secret"]).verify(fields[b"body"], headers) == event["id"]
    await redis_client.delete(key)


async def test_a_broker_that_refuses_or_cannot_be_reached_is_a_failed_attempt(
    hub: HubClient,
):
    """Unroutable (no queue bound), no stream for the subject, nothing listening: each is an
    attempt failure with what the broker said, retried like an unreachable URL."""
    cases = [
        (
            "rabbitmq",
            AMQP,
            {"exchange": "", "routing_key": name("no-such-queue")},
            "broker_refused",
        ),
        ("nats", NATS, {"subject": name("nostream").replace("-", "_")}, "broker_refused"),
        ("redis", "redis://127.0.0.1:9/0", {"stream": "s"}, "connect_error"),
    ]
    for kind, url, config, error in cases:
        endpoint = await hub.endpoint(url, type=kind, config=config)
        event = await hub.http.post(
            "/v1/events", json={"type": SEED, "parameters": seed_parameters()}
        )
        await hub.drain()
        deliveries = (await hub.http.get(f"/v1/events/{event.json()['id']}")).json()["deliveries"]
        [mine] = [d for d in deliveries if d["endpoint_id"] == endpoint["id"]]
        assert mine["status"] in ("pending", "failed") and mine["last_error"] == error, (kind, mine)
        await hub.http.delete(f"/v1/endpoints/{endpoint['id']}")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "rabbitmq", "url": "http://127.0.0.1:5672/"}, "url"),
        ({"type": "rabbitmq", "url": AMQP, "config": {"exchange": "bad name!"}}, "exchange"),
        ({"type": "rabbitmq", "url": AMQP, "config": {"queue": "q"}}, "queue"),
        ({"type": "nats", "url": NATS}, "subject"),
        ({"type": "nats", "url": NATS, "config": {"subject": "a..b"}}, "subject"),
        ({"type": "redis", "url": REDIS, "config": {"stream": "s", "maxlen": 0}}, "maxlen"),
        ({"type": "redis", "url": "redis://10.0.0.1:6379/0", "config": {"stream": "s"}}, "url"),
        ({"type": "webhook", "url": "http://127.0.0.1:9/x", "config": {"a": 1}}, "config"),
        ({"type": "kafka", "url": "kafka://127.0.0.1:9092"}, "type"),
    ],
)
async def test_bad_configuration_is_a_422_naming_the_field(
    hub: HubClient, body: dict[str, Any], field: str
):
    answer = await hub.http.post("/v1/endpoints", json=body)
    assert answer.status_code == 422, answer.text
    assert field in jsoncodec.dumps(answer.json()["error"]["details"]).decode()
    assert (await hub.http.get("/v1/endpoints")).json()["data"] == []


async def test_credentials_are_sealed_at_rest_and_kept_for_the_same_broker_only(
    hub: HubClient, queue: tuple[str, Any]
):
    """A config change, or the same broker's URL given without credentials (as the console's
    form gives it back), keeps them; another broker's URL never inherits them."""
    queue_name, declared = queue
    endpoint = await hub.endpoint(AMQP, type="rabbitmq", config={"routing_key": "elsewhere"})
    [(stored,)] = await rows(hub.hub.settings.database_url, "SELECT credentials FROM endpoints")
    assert stored.startswith("sealed:v1:") and "guest" not in stored
    path = f"/v1/endpoints/{endpoint['id']}"
    patched = await hub.http.patch(path, json={"config": {"routing_key": queue_name}})
    assert patched.status_code == 200 and patched.json()["has_credentials"]
    same = await hub.http.patch(path, json={"url": "amqp://127.0.0.1:5672/"})
    assert same.json()["has_credentials"]
    event = await hub.publish(SEED, seed_parameters())
    assert (await delivered(hub, event["id"]))["status"] == "succeeded"
    assert await declared.get(timeout=5)
    moved = await hub.http.patch(path, json={"url": "amqp://localhost:5672/"})
    assert moved.status_code == 200 and not moved.json()["has_credentials"]


async def test_the_console_registers_a_rabbitmq_endpoint_and_never_shows_its_password(
    hub: HubClient, queue: tuple[str, Any]
):
    queue_name, declared = queue
    async with ConsoleBrowser(hub.app) as console:
        await console.sign_in(API_KEY)
        await console.get("/console/endpoints/new")
        form = {"type": "rabbitmq", "url": "amqp://guest:guest@127.0.0.1:5672/",
                "routing_key": queue_name, "types": "all"}  # fmt: skip
        created = await console.post("/console/endpoints", form)
        assert created.status_code == 303, created.text
        page = await console.get(created.headers["location"])
        assert "rabbitmq" in page.text and "kept, never shown" in page.text
        assert f"routing_key = {queue_name}" in page.text
        edit = await console.get(created.headers["location"] + "/edit")
        assert "guest@" not in page.text + edit.text  # neither user nor password
        saved = await console.post(created.headers["location"],
                                   {"url": "amqp://127.0.0.1:5672/", "routing_key": queue_name,
                                    "types": "all"})  # fmt: skip
        assert saved.status_code == 303, saved.text
        refused = await console.post(created.headers["location"],
                                     {"url": "amqp://127.0.0.1:5672/", "exchange": "bad name!",
                                      "types": "all"})  # fmt: skip
        assert refused.status_code == 422 and "an exchange name" in refused.text
    event = await hub.publish(SEED, seed_parameters())
    d = await delivered(hub, event["id"])
    assert d["status"] == "succeeded", d["attempts_seen"]  # the kept credentials logged in
    [endpoint] = (await hub.http.get("/v1/endpoints")).json()["data"]
    secret = (await hub.http.get(f"/v1/endpoints/{endpoint['id']}/secret")).json()["secret"]
    message = await declared.get(timeout=5)
    assert Verifier(secret).verify(message.body, text_headers(message.headers)) == event["id"]


async def test_cloudevents_binary_and_structured_on_a_webhook_and_a_broker(
    hub: HubClient, receiver: Any, queue: tuple[str, Any]
):
    """Binary mode: the CloudEvents attributes beside the unchanged body (the signature is the
    one without them); structured: one application/cloudevents+json document, signed."""
    app, server = receiver
    binary = await hub.endpoint(server.url, format="cloudevents")
    app.set_secret(binary["secret"])
    event = await hub.publish(SEED, seed_parameters({"customerNumber": "C-7"}))
    await hub.drain()
    [request] = app.inbox.latest(1)
    assert request["webhook_id"] == event["id"]
    queue_name, declared = queue
    structured = await hub.endpoint(
        AMQP, type="rabbitmq", config={"routing_key": queue_name}, format="cloudevents",
        cloudevents_mode="structured",
    )  # fmt: skip
    event2 = await hub.publish(SEED, seed_parameters({"customerNumber": "C-8"}))
    await hub.drain()
    message = await declared.get(timeout=5)
    assert message.content_type == "application/cloudevents+json"
    document = jsoncodec.loads(message.body)
    assert (document["specversion"], document["id"], document["type"], document["subject"]) == (
        "1.0", event2["id"], SEED, "C-8")  # fmt: skip
    sent = jsoncodec.loads(jsoncodec.dumps(seed_parameters({"customerNumber": "C-8"})))
    assert document["data"]["parameters"] == sent  # numbers read back as Decimal, like these
    assert Verifier(structured["secret"]).verify(message.body, text_headers(message.headers))


@pytest.mark.parametrize(
    ("url", "address", "reached"),
    [
        ("amqp://broker.example:5672/vh", "192.0.2.7", "amqp://192.0.2.7:5672/vh"),
        ("nats://broker.example", "2001:db8::7", "nats://[2001:db8::7]"),
        ("redis://broker.example:6380/2", "192.0.2.7", "redis://192.0.2.7:6380/2"),
        ("amqps://broker.example:5671/", "192.0.2.7", "amqps://broker.example:5671/"),
        ("rediss://broker.example/0", "192.0.2.7", "rediss://broker.example/0"),
        ("amqp://192.0.2.9:5672/", None, "amqp://192.0.2.9:5672/"),
    ],
)
def test_a_plaintext_connection_goes_to_the_address_the_egress_check_allowed(
    url: str, address: str | None, reached: str
):
    """No second DNS lookup a rebinding name could answer with a forbidden address; a TLS
    scheme keeps the name its certificate must match."""
    destination = Destination("rabbitmq", url, {}, "u:p", address=address)
    assert destination.reach() == reached
    assert destination.connect_url() == reached.replace("://", "://u:p@", 1)


async def test_a_broker_named_by_host_name_is_reached_at_its_checked_address(
    hub: HubClient, redis_client: Any
):
    key = name("bh-test-stream")
    await hub.endpoint("redis://localhost:6379/0", type="redis", config={"stream": key})
    event = await hub.publish(SEED, seed_parameters())
    assert (await delivered(hub, event["id"]))["status"] == "succeeded"
    assert await redis_client.xlen(key) == 1
    await redis_client.delete(key)


async def test_more_concurrent_publishes_than_redis_connections_wait_instead_of_failing(
    redis_client: Any,
):
    """Every endpoint on one Redis shares its pool: the 101st concurrent XADD used to fail with
    "Too many connections" (an attempt failure, then a failing endpoint) instead of waiting."""
    key = name("bh-test-stream")
    publisher = RedisStreams()
    destination = Destination("redis", REDIS, {"stream": key, "maxlen": 10_000}, None)
    message = Message((("webhook-id", "msg_1"),), b"{}", "application/json", "dlv_1", SEED, None)
    try:
        await asyncio.gather(*(publisher.publish(destination, message) for _ in range(300)))
    finally:
        await publisher.close()
    assert await redis_client.xlen(key) == 300
    await redis_client.delete(key)
