"""Replays: re-send one event, or everything an endpoint missed (or never had: a backfill).

A replay job is a cursor over the tenant's events in a time window. The worker advances it in
batches, keeping about a second of work enqueued, each delivery due at its own paced moment
(`rate_per_s`, default 250/s) so the sending is even and live traffic keeps its latency; each
batch's deliveries and the moved cursor are one transaction, so a restarted hub resumes exactly
where it was (app/replay_runner.py). Replayed deliveries keep the event id as `webhook-id` and
have the trigger `replay`. This module holds the use cases the API and the CLI call.

A replay of what failed also takes in what the endpoint's circuit holds (deliveries still
pending, waiting for a probe to succeed): they count in its dry run and its progress, and go
out as soon as the endpoint answers again (starting a replay probes it at once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from app.clock import Clock
from app.errors import NotFound, ValidationFailed
from app.fanout import delivery_to, matching
from app.ids import id_floor, new_id
from app.inputs import parse_time
from app.models import ReplayCreate
from app.records import Endpoint, Event, NewDelivery, NewEvent, Replay
from app.store import Store

DEFAULT_RATE = 250


@dataclass(frozen=True, slots=True)
class Progress:
    replay: Replay
    status: str
    succeeded: int
    failed: int
    pending: int


@dataclass(frozen=True, slots=True)
class Request:
    endpoint_id: str
    since: int
    until: int | None = None
    only_failed: bool = False
    event_types: tuple[str, ...] | None = None
    rate_per_s: int | None = None


def request_from(spec: ReplayCreate) -> Request:
    """The API's checked body (or the console's form, checked by the same model) as the
    service takes it."""
    return Request(
        endpoint_id=spec.endpoint_id,
        since=parse_time("since", spec.since),
        until=parse_time("until", spec.until) if spec.until else None,
        only_failed=spec.status == "failed",
        event_types=tuple(spec.event_types) if spec.event_types is not None else None,
        rate_per_s=spec.rate_per_s,
    )


class ReplayService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.on_enqueue: Callable[[], None] = lambda: None

    async def replay_event(
        self, tenant_id: str, event_id: str, endpoint_id: str | None
    ) -> list[NewDelivery]:
        """A fresh delivery to one endpoint, or to every endpoint the event matches now."""
        event = await self._store.events.get(tenant_id, event_id)
        if event is None:
            raise NotFound(f"no event {event_id}")
        endpoints = await self._store.endpoints.of_tenant(tenant_id)
        if endpoint_id is not None:
            targets = [ep for ep in endpoints if ep.id == endpoint_id]
            if not targets:
                raise NotFound(f"no endpoint {endpoint_id}")
        else:
            targets = matching(event, endpoints)
        now = self._clock.now_ms()
        deliveries = [delivery_to(event, ep, now, trigger="replay") for ep in targets]
        await self._store.replays.add_deliveries([NewEvent(event, tuple(deliveries))])
        for ep in targets:
            await self._probe_now(ep, now)
        self.on_enqueue()
        return deliveries

    async def count(self, tenant_id: str, request: Request) -> int:
        """How many events the request selects (what a dry run answers)."""
        endpoint = await self._endpoint(tenant_id, request.endpoint_id)
        since_id, until_id = self._window(request)
        total = 0
        for which in ("failed", "held") if request.only_failed else ("all",):
            groups = await self._store.replays.counts(
                tenant_id, endpoint.id, since_id, until_id, which
            )
            total += sum(n for event, n in groups if selected(event, endpoint, request))
        return total

    async def start(self, tenant_id: str, request: Request) -> Replay:
        matched = await self.count(tenant_id, request)
        now = self._clock.now_ms()
        rate = request.rate_per_s or DEFAULT_RATE
        replay = Replay(
            id=new_id("rp", now),
            tenant_id=tenant_id,
            endpoint_id=request.endpoint_id,
            since=request.since,
            until=request.until if request.until is not None else now,
            only_failed=request.only_failed,
            event_types=request.event_types,
            rate_per_s=rate,
            status="running",
            matched=matched,
            enqueued=0,
            cursor=None,
            next_run_at=now,
            created_at=now,
            updated_at=now,
        )
        await self._store.replays.create(replay)
        if request.only_failed:
            since_id, until_id = self._window(replace(request, until=replay.until))
            await self._store.replays.adopt_held(
                replay.id, request.endpoint_id, since_id, until_id, request.event_types
            )
        await self._probe_now(await self._endpoint(tenant_id, request.endpoint_id), now)
        return replay

    async def page(self, tenant_id: str, cursor: str | None, limit: int) -> list[Progress]:
        """Newest first, each with its progress."""
        found = await self._store.replays.page(tenant_id, cursor, limit)
        return [await self.progress(tenant_id, r.id) for r in found]

    async def progress(self, tenant_id: str, replay_id: str) -> Progress:
        replay = await self._store.replays.get(tenant_id, replay_id)
        if replay is None:
            raise NotFound(f"no replay {replay_id}")
        counts = await self._store.replays.progress(replay.id)
        pending = counts.get("pending", 0) + counts.get("delivering", 0)
        status = "running" if replay.status == "done" and pending else replay.status
        return Progress(
            replay, status, counts.get("succeeded", 0), counts.get("failed", 0), pending
        )

    async def cancel(self, tenant_id: str, replay_id: str) -> Progress:
        """Whenever it is not finished: still enqueueing, or enqueued with deliveries pending
        (shown as running). What it enqueued and is still pending is cancelled."""
        before = await self.progress(tenant_id, replay_id)  # 404 if unknown
        if before.status != "running" or not await self._store.replays.cancel(
            tenant_id, replay_id, self._clock.now_ms()
        ):
            raise ValidationFailed.field("status", f"the replay is {before.status}: finished")
        return await self.progress(tenant_id, replay_id)

    async def _probe_now(self, endpoint: Endpoint, now: int) -> None:
        """Whoever replays to a failing endpoint says it is back: probe it now, so what the
        circuit holds (the replay included) goes as soon as it answers, not at the next step."""
        if endpoint.health == "failing":
            await self._store.endpoints.probe_now(endpoint.id, now)

    def _window(self, request: Request) -> tuple[str, str]:
        return window(request, self._clock.now_ms())

    async def _endpoint(self, tenant_id: str, endpoint_id: str) -> Endpoint:
        endpoint = await self._store.endpoints.get(tenant_id, endpoint_id)
        if endpoint is None:
            raise NotFound(f"no endpoint {endpoint_id}")
        return endpoint


def window(request: Request, now: int) -> tuple[str, str]:
    """The event-id range of the request's time window (until: now when open)."""
    until = request.until if request.until is not None else now
    return id_floor("evt", request.since), id_floor("evt", until)


def request_of(replay: Replay) -> Request:
    return Request(
        replay.endpoint_id,
        replay.since,
        replay.until,
        replay.only_failed,
        replay.event_types,
        replay.rate_per_s,
    )


def selected(event: Event, endpoint: Endpoint, request: Request) -> bool:
    """Of the request's event types (else those the endpoint subscribes to now), never about
    the endpoint itself; a backfill also keeps to the endpoint's filter, while a failed
    delivery matched it once already."""
    if event.about_endpoint_id == endpoint.id:
        return False
    if request.event_types is not None:
        if event.type not in request.event_types:
            return False
    elif not endpoint.wants(event.type):
        return False
    return request.only_failed or endpoint.accepts(
        event.customer_number, event.external_contract_id
    )
