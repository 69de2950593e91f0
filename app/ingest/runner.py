"""Queue ingest: usage completions, charges and events read from the platform's broker in
batches and taken exactly as the bulk routes take them (app/intake.py: same validation, same
pricing, same idempotency, one commit per batch).

A message is settled only after that commit: accepted or a repeat → acknowledged; never
acceptable (not JSON, a 4xx) → kept as a dead letter with its error (the console shows it;
the source's `dead_letter` queue/subject/stream gets it too), then acknowledged, so it never
blocks the queue; the store unavailable → given back to the broker and read again. A broker
that goes away is reconnected with backoff; what it had not seen acknowledged it redelivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

from app import jsoncodec, metrics
from app.clock import Clock, to_rfc3339
from app.config import IngestSource
from app.errors import ApiError, BadRequest, StoreUnavailable
from app.ids import new_id
from app.ingest.consumers import consumer_for
from app.ingest.received import Consumer, Received
from app.inputs import decode
from app.intake import Intake, Item, Outcome
from app.store import Store

log = logging.getLogger("billhook.ingest")

WAIT_S = 1.0  # a fetch waits this long for a first message
MAX_MESSAGE_BYTES = 256 * 1024  # as a request body
KEPT_BODY_CHARS = 64 * 1024  # of a dead letter, for the console
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class _Internal(ApiError):
    status, code = 500, "internal_error"


class Ingest:
    def __init__(
        self,
        sources: Sequence[IngestSource],
        intake: Intake,
        store: Store,
        clock: Clock,
        consumers: Callable[[IngestSource], Consumer] = consumer_for,
        failpoint: str | None = None,
    ) -> None:
        self.sources = sources
        self._intake = intake
        self._store = store
        self._clock = clock
        self._consumers = consumers
        self._stop = asyncio.Event()
        self._failpoint = failpoint

    async def run(self) -> None:
        """Follow every source until stop()."""
        await asyncio.gather(*(self._follow(s) for s in self.sources))

    def stop(self) -> None:
        self._stop.set()

    async def _follow(self, source: IngestSource) -> None:
        failures = 0
        while not self._stop.is_set():
            consumer = self._consumers(source)
            try:
                await consumer.open()
                if failures:
                    log.info(f"ingest {source.name}: {source.where} is back")
                failures = 0
                await self._turns(source, consumer)
            except Exception as exc:  # the broker or the store: retried, said once per outage
                failures += 1
                if failures == 1:
                    log.warning(f"ingest {source.name} ({source.where}) stopped: "
                                f"{type(exc).__name__}: {exc}; retrying")  # fmt: skip
                await self._pause(BACKOFF_S[min(failures, len(BACKOFF_S)) - 1])
            finally:
                await consumer.close()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _turns(self, source: IngestSource, consumer: Consumer) -> None:
        """Two batches in flight, in the broker's order: the next is fetched, validated and
        priced while the one before commits and settles, and it writes and settles only once
        that one has (_After). A batch fetched and never taken (the loop stopped or failed) is
        redelivered by the broker: nothing acknowledged it."""
        fetching = asyncio.ensure_future(consumer.fetch(source.batch, WAIT_S))
        current: asyncio.Future[None] | None = None
        try:
            while not self._stop.is_set():
                messages = await fetching
                fetching = asyncio.ensure_future(consumer.fetch(source.batch, WAIT_S))
                if not messages:
                    continue
                following = asyncio.ensure_future(
                    self._turn(source, consumer, messages, _After(current))
                )
                if current is not None:
                    await current
                current = following
        finally:
            fetching.cancel()
            fetching.add_done_callback(_retrieved)
            if current is not None:
                await current

    async def _turn(
        self,
        source: IngestSource,
        consumer: Consumer,
        messages: Sequence[Received],
        after: _After,
    ) -> None:
        try:
            outcomes = await self._take(source, [_item(m) for m in messages], after)
            await after()
        except Exception:
            metrics.INGEST_RETRIES.labels(source.name).inc()
            await consumer.release(messages)
            raise
        if self._failpoint == "ingest-after-commit":  # the crash tests (app/config.py)
            os.kill(os.getpid(), signal.SIGKILL)
        await self._settle(source, consumer, messages, outcomes)

    async def _take(
        self, source: IngestSource, items: Sequence[Item | ApiError], after: _After
    ) -> list[Outcome]:
        """Each message's outcome; a batch that raised other than for the store (or for the
        batch before it) is taken again one by one, so one message that breaks something is
        dead-lettered alone."""
        valid = [i for i in items if isinstance(i, Item)]
        try:
            taken = iter(await self._intake.take(source.kind, source.tenant, valid, after))
        except (StoreUnavailable, _Abandoned):
            raise
        except Exception as exc:
            if len(valid) > 1:
                return [o for i in items for o in await self._take(source, [i], after)]
            log.exception(f"ingest {source.name}: a message could not be taken")
            taken = iter([_Internal(f"billhook could not take this message: {exc}")])
        return [i if isinstance(i, ApiError) else next(taken) for i in items]

    async def _settle(
        self,
        source: IngestSource,
        consumer: Consumer,
        messages: Sequence[Received],
        outcomes: Sequence[Outcome],
    ) -> None:
        """Dead letters kept first, then acks: a crash in between only repeats work."""
        done: list[Received] = []
        dead: list[tuple[Received, ApiError]] = []
        again: list[Received] = []
        repeated = 0
        for message, outcome in zip(messages, outcomes, strict=True):
            if not isinstance(outcome, ApiError):
                done.append(message)
                repeated += outcome[0] != 202
            elif outcome.status >= 500 and not isinstance(outcome, _Internal):
                again.append(message)
            else:
                dead.append((message, outcome))
        metrics.INGESTED.labels(source.name, "accepted").inc(len(done) - repeated)
        metrics.INGESTED.labels(source.name, "repeated").inc(repeated)
        if dead:
            await self._dead_letter(source, consumer, dead)
        if again:  # released first: an ack of the rest may then cover everything before it
            metrics.INGEST_RETRIES.labels(source.name).inc()
            await consumer.release(again)
        await consumer.ack(done + [m for m, _ in dead])

    async def _dead_letter(
        self, source: IngestSource, consumer: Consumer, dead: Sequence[tuple[Received, ApiError]]
    ) -> None:
        now = self._clock.now_ms()
        rows = [_row(source, message, error, now) for message, error in dead]
        await self._store.dead_letters.add(rows)
        for message, error in dead:
            await consumer.dead_letter(_letter(source, message, error, now))
        metrics.INGESTED.labels(source.name, "dead_lettered").inc(len(dead))
        log.warning(f"ingest {source.name}: {len(dead)} message(s) dead-lettered, the first: "
                    f"{dead[0][1].code}: {dead[0][1].message}")  # fmt: skip


class _Abandoned(Exception):
    """The batch before this one failed: this one is given back to the broker, unwritten."""


class _After:
    """Awaited before a batch writes and again before it settles: the batch before it has
    committed and settled (acks cover what came before them: RabbitMQ's are cumulative)."""

    def __init__(self, before: asyncio.Future[None] | None) -> None:
        self._before = before

    async def __call__(self) -> None:
        if self._before is None:
            return
        await asyncio.wait([self._before])
        if self._before.cancelled() or self._before.exception() is not None:
            raise _Abandoned("the batch before this one was not taken")


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A fetch left behind may have failed too: its error is the connection's, already met."""
    if not future.cancelled():
        future.exception()


def _item(message: Received) -> Item | ApiError:
    if message.problem:
        return BadRequest(message.problem)
    try:
        return Item(decode(message.body, MAX_MESSAGE_BYTES), message.key or _digest(message))
    except ApiError as exc:
        return exc


def _digest(message: Received) -> str:
    """The key of a message its broker gave no id: its content (docs/destinations.md)."""
    return "sha256:" + hashlib.sha256(message.body).hexdigest()


def _row(source: IngestSource, message: Received, error: ApiError, now: int) -> dict[str, Any]:
    return {
        "id": new_id("dl", now),
        "tenant_id": source.tenant,
        "source": source.name,
        "message_key": message.key or _digest(message),
        "body": message.body.decode("utf-8", "replace")[:KEPT_BODY_CHARS],
        "body_bytes": len(message.body),
        "error": jsoncodec.dumps(error.body()["error"]).decode(),
        "created_at": now,
    }


def _letter(source: IngestSource, message: Received, error: ApiError, now: int) -> bytes:
    """What the source's dead-letter queue gets: the message and why it was not taken."""
    return jsoncodec.dumps({
        "source": source.name,
        "kind": source.kind,
        "message_key": message.key,
        "error": error.body()["error"],
        "message": message.body.decode("utf-8", "replace"),
        "dead_lettered_at": to_rfc3339(now),
    })  # fmt: skip
