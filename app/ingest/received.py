"""What a queue-ingest consumer hands the runner, and what the runner asks of a consumer: read
a batch, then acknowledge, give back or dead-letter it once the accepting transaction is known
(app/ingest/runner.py). Each broker's consumer is in app/ingest/consumers.py or, for RabbitMQ,
app/ingest/rabbitmq.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


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
