"""Event use cases: publish (store + fan-out in one commit), read, and the endpoint test ping."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app import jsoncodec, metrics
from app.activity import SAMPLE, Activity, bounds, summarise
from app.cache import CounterCache
from app.clock import Clock
from app.delivery import Deliverer
from app.errors import Conflict, NotFound
from app.fanout import deliveries_for, envelope
from app.health import judge
from app.ids import new_id
from app.records import (
    Attempt,
    BillingRecord,
    Delivery,
    Endpoint,
    Event,
    Inserted,
    Job,
    NewDelivery,
    NewEvent,
)
from app.settle import settle
from app.store import Store
from app.store.outcomes import Rules

TEST_EVENT_TYPE = "webhook.test"
QUEUE_CAP = 100_000  # open deliveries a page counts at most ("100000+")


Turn = Callable[[], Awaitable[None]]
"""What publish_many awaits before it writes (queue ingest's order between batches)."""


@dataclass(frozen=True, slots=True)
class Publication:
    """One event to publish among many (publish_many): what publish takes, as data."""

    event_type: str
    parameters: dict[str, Any]
    idempotency_key: str | None = None
    ordering_key: str | None = None
    request_digest: str | None = None
    billing: BillingRecord | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Published:
    event: Event
    created: bool
    deliveries: int
    same_request: bool = True  # False: the idempotency key was used for a different request


def request_hash(event_type: str, parameters: Any, ordering_key: str | None) -> str:
    canonical = jsoncodec.canonical([event_type, parameters, ordering_key])
    return hashlib.sha256(canonical).hexdigest()


def digest_of(event: Event) -> str:
    """What identifies the request an event was published for: the digest its publisher gave
    (a billing request's), else type, parameters and ordering key hashed canonically. That
    hash is worked out when a repeat is compared, from the stored body (which reads back as
    the same JSON value), not on every accept; events stored before kept it in the row."""
    return event.request_hash or request_hash(event.type, parameters_of(event), event.ordering_key)


def parameters_of(event: Event) -> dict[str, Any]:
    parameters: dict[str, Any] = jsoncodec.loads(event.body)["parameters"]
    return parameters


class EventService:
    def __init__(
        self, store: Store, clock: Clock, endpoints: CounterCache[str, list[Endpoint]]
    ) -> None:
        self._store = store
        self._clock = clock
        self._endpoints = endpoints
        self.on_commit: Callable[[], None] = lambda: None
        self.rules: Rules = Rules(judge, ())  # a test ping is evidence of health like any attempt

    async def publish(
        self,
        tenant_id: str,
        event_type: str,
        parameters: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        ordering_key: str | None = None,
        request_digest: str | None = None,
        billing: BillingRecord | None = None,
        event_id: str | None = None,
    ) -> Published:
        """Store the event and one delivery per matching endpoint, committed before returning.

        An idempotency key already used by the tenant returns the original event (created=False,
        nothing written); `same_request` says whether the request matched the original's
        (`request_digest`; by default a digest of type, parameters and ordering key, worked
        out only for a repeat: `same_request`).
        """
        now = self._clock.now_ms()
        new = await self.prepare(
            tenant_id,
            event_type,
            parameters,
            now,
            event_id=event_id,
            idempotency_key=idempotency_key,
            ordering_key=ordering_key,
            request_digest=request_digest,
        )
        event, deliveries = new.event, new.deliveries
        inserted = await self._store.events.insert(NewEvent(event, deliveries, billing))
        if inserted.created:
            self.committed(len(deliveries))
            return Published(inserted.event, True, len(deliveries))
        return await self._repeat(inserted.event, event)

    async def publish_item(self, tenant_id: str, item: Publication) -> Published:
        """publish, with its arguments as one Publication (as publish_many takes them)."""
        return await self.publish(
            tenant_id,
            item.event_type,
            item.parameters,
            idempotency_key=item.idempotency_key,
            ordering_key=item.ordering_key,
            request_digest=item.request_digest,
            billing=item.billing,
            event_id=item.event_id,
        )

    async def publish_many(
        self, tenant_id: str, items: Sequence[Publication], turn: Turn | None = None
    ) -> list[Published]:
        """Many events, with their deliveries and billing rows, in one transaction (bulk
        ingest): the tenant's endpoints are matched once, and each item answers as publish
        would (a repeated idempotency key, within the batch too, gives the first event).
        `turn`, awaited once everything is built and before the write, lets a caller build
        its next batch while the one before commits and still write them in order."""
        now = self._clock.now_ms()
        endpoints = await self._endpoints.get(tenant_id)
        news = []
        for item in items:
            event = self._event(
                tenant_id,
                item.event_type,
                item.parameters,
                now,
                item.event_id,
                item.idempotency_key,
                item.ordering_key,
                item.request_digest,
            )
            news.append(NewEvent(event, deliveries_for(event, endpoints, now), item.billing))
        if turn is not None:
            await turn()
        inserted = await self._store.events.insert_many(news)
        self.committed(sum(i.deliveries or 0 for i in inserted if i.created))
        return [await self._answer(i, new) for i, new in zip(inserted, news, strict=True)]

    async def _answer(self, inserted: Inserted, new: NewEvent) -> Published:
        if inserted.created:
            return Published(inserted.event, True, inserted.deliveries or 0)
        return await self._repeat(inserted.event, new.event)

    async def _repeat(self, original: Event, event: Event) -> Published:
        """The original's answer to a repeat of its idempotency key, and whether the repeat
        asked for the same thing."""
        count = await self._store.events.delivery_count(original.id)
        return Published(original, False, count, digest_of(original) == digest_of(event))

    def _event(
        self,
        tenant_id: str,
        event_type: str,
        parameters: dict[str, Any],
        now: int,
        event_id: str | None,
        idempotency_key: str | None,
        ordering_key: str | None,
        request_digest: str | None,
    ) -> Event:
        return Event(
            id=event_id or new_id("evt", now),
            tenant_id=tenant_id,
            type=event_type,
            body=envelope(event_type, parameters),
            created_at=now,
            request_hash=request_digest or "",
            idempotency_key=idempotency_key,
            customer_number=_str(parameters, "customerNumber"),
            external_contract_id=_str(parameters, "externalContractId"),
            ordering_key=ordering_key,
        )

    async def prepare(
        self,
        tenant_id: str,
        event_type: str,
        parameters: dict[str, Any],
        now: int,
        *,
        event_id: str | None = None,
        idempotency_key: str | None = None,
        ordering_key: str | None = None,
        request_digest: str | None = None,
    ) -> NewEvent:
        """An event and its deliveries, for whoever writes them (publish, or a use case that
        must commit them with its own rows, like finalizing an invoice)."""
        event = self._event(
            tenant_id,
            event_type,
            parameters,
            now,
            event_id,
            idempotency_key,
            ordering_key,
            request_digest,
        )
        return NewEvent(event, await self._fan_out(event, now))

    def committed(self, deliveries: int) -> None:
        """An event and its deliveries are committed: count them and wake the worker."""
        metrics.EVENTS_PUBLISHED.inc()
        metrics.DELIVERIES_CREATED.inc(deliveries)
        self.on_commit()

    def conflict(
        self, original: Event, event_type: str, parameters: dict[str, Any], ordering_key: str | None
    ) -> Conflict:
        """The 409 for a generic event whose idempotency key was used for another request."""
        return Conflict(
            f"idempotency key {original.idempotency_key!r} was used for a different request",
            _differences(original, event_type, parameters, ordering_key),
        )

    async def _fan_out(self, event: Event, now: int) -> tuple[NewDelivery, ...]:
        return deliveries_for(event, await self._endpoints.get(event.tenant_id), now)

    async def get(self, tenant_id: str, event_id: str) -> Event:
        event = await self._store.events.get(tenant_id, event_id)
        if event is None:
            raise NotFound(f"no event {event_id}")
        return event

    async def page(self, tenant_id: str, filters: dict[str, Any], limit: int) -> list[Event]:
        """Newest first; `filters` as the store reads them (cursor, since/until ids, type,
        customer_number)."""
        return await self._store.events.page(tenant_id, filters, limit)

    async def deliveries(self, tenant_id: str, event_id: str) -> list[Delivery]:
        return await self._store.deliveries.of_event(tenant_id, event_id)

    async def delivery(self, tenant_id: str, delivery_id: str) -> Delivery:
        found = await self._store.deliveries.get(tenant_id, delivery_id)
        if found is None:
            raise NotFound(f"no delivery {delivery_id}")
        return found

    async def attempts(
        self, tenant_id: str, delivery_id: str, cursor: str | None, limit: int
    ) -> list[Attempt]:
        await self.delivery(tenant_id, delivery_id)  # 404 for an unknown or foreign one
        return await self._store.deliveries.attempts(tenant_id, delivery_id, cursor, limit)

    async def activity(
        self, tenant_id: str, window_ms: int, endpoint_id: str | None = None
    ) -> Activity:
        """Attempts over the last `window_ms`, in slices (app/activity.py: bounded reads)."""
        until = self._clock.now_ms()
        slices = [
            await self._store.deliveries.activity(tenant_id, endpoint_id, lo, hi, SAMPLE)
            for lo, hi in bounds(until - window_ms, until)
        ]
        return summarise(slices, until - window_ms, until)

    async def queue(self, tenant_id: str) -> tuple[int, int | None]:
        """Unfinished deliveries (counted up to QUEUE_CAP) and when the oldest was created."""
        return await self._store.deliveries.queue(tenant_id, QUEUE_CAP)

    async def search(
        self,
        tenant_id: str,
        filters: dict[str, Any],
        limit: int,
        transaction_id: str | None = None,
        event_id: str | None = None,
    ) -> list[Event]:
        """Events newest first by type, customer, contract and time; or the one event of an
        id or of a billing transaction."""
        if event_id:
            found = await self._store.events.get(tenant_id, event_id)
            return [found] if found else []
        if transaction_id:
            found = await self._store.events.by_transaction(tenant_id, transaction_id)
            return [found] if found else []
        return await self._store.events.page(tenant_id, filters, limit)

    async def delivery_statuses(
        self, tenant_id: str, events: Sequence[Event]
    ) -> dict[str, dict[str, int]]:
        """How each listed event fared: event id → {delivery status: count}."""
        return await self._store.deliveries.statuses_of_events(tenant_id, [e.id for e in events])

    async def types_of(self, tenant_id: str) -> list[str]:
        """The event types the tenant has used lately."""
        return await self._store.events.types_of(tenant_id)

    async def oldest_due(self, now: int) -> int | None:
        """When the longest-waiting due delivery became due (for /metrics)."""
        return await self._store.deliveries.oldest_due(now)

    async def ping(self) -> None:
        """The store answers (for /healthz)."""
        await self._store.ping()

    async def send_test(self, tenant_id: str, endpoint_id: str, deliverer: Deliverer) -> Attempt:
        """A signed webhook.test now, stored like any event; a diagnostic, so never retried."""
        endpoint = await self._store.endpoints.get(tenant_id, endpoint_id)
        if endpoint is None:
            raise NotFound(f"no endpoint {endpoint_id}")
        now = self._clock.now_ms()
        parameters = {"endpointId": endpoint.id, "message": "billhook test event"}
        event = Event(
            id=new_id("evt", now),
            tenant_id=tenant_id,
            type=TEST_EVENT_TYPE,
            body=envelope(TEST_EVENT_TYPE, parameters),
            created_at=now,
            request_hash=request_hash(TEST_EVENT_TYPE, parameters, None),
        )
        lease_until = now + 3_600_000  # the worker leaves it alone while it is sent here
        delivery = NewDelivery(new_id("dlv", now), endpoint.id, lease_until, "test", "delivering")
        await self._store.events.insert(NewEvent(event, (delivery,)))
        job = Job(
            delivery_id=delivery.id,
            tenant_id=tenant_id,
            event_id=event.id,
            endpoint_id=endpoint.id,
            event_type=event.type,
            attempts=0,
            trigger="test",
            lease_until=lease_until,
            url=endpoint.url,
            body=event.body,
            secrets=(endpoint.secret,),
            destination=endpoint.destination(),
            event_time=now,
        )
        outcome = await deliverer.deliver(job)
        finished = settle(job, outcome, schedule=())
        await self._store.deliveries.record([finished], self._clock.now_ms(), self.rules)
        return finished.attempt


def _str(parameters: dict[str, Any], key: str) -> str | None:
    value = parameters.get(key)
    return value if isinstance(value, str) else None


def _differences(
    original: Event, event_type: str, parameters: dict[str, Any], ordering_key: str | None
) -> list[dict[str, Any]]:
    before = {
        "type": original.type,
        "parameters": parameters_of(original),
        "ordering_key": original.ordering_key,
    }
    after = {"type": event_type, "parameters": parameters, "ordering_key": ordering_key}
    return jsoncodec.differences(before, after)
