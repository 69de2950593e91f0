"""The brokers the destination and ingest tests use (this machine's; .ci/run starts them), and
fixtures that give each test its own stream (tests/conftest.py registers them)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
import redis.asyncio as aioredis
from nats.js.api import StreamConfig

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
NATS = "nats://127.0.0.1:4222"
REDIS = "redis://127.0.0.1:6379/0"
SEED = "subscriptions/billingInformationAvailable"


def name(prefix: str) -> str:
    """A name no other test uses: brokers outlive a test run."""
    return f"{prefix}_{secrets.token_hex(4)}"


@pytest.fixture
async def jetstream() -> AsyncIterator[tuple[str, Any]]:
    """A stream of its own capturing `<stream in lower case>.>`, deleted at the end."""
    client = await nats.connect(NATS)
    js = client.jetstream()
    stream = name("BHTEST").upper()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream.lower()}.>"]))
    yield stream, js
    await js.delete_stream(stream)
    await client.close()


@pytest.fixture
async def redis_client() -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(REDIS)
    yield client
    await client.aclose()
