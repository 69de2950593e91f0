"""/v1/events and /v1/deliveries: publish, inspect, and see every attempt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.hot import HotEndpoint
from app.api.http import JSON, body, hub, page, paginated, path_id, query_text, tenant
from app.api.openapi import MOMENT, PAGE, Param, documented
from app.api.views import attempt_out, delivery_out
from app.clock import to_rfc3339
from app.errors import ValidationFailed
from app.events import parameters_of
from app.hub import Hub
from app.ids import id_floor
from app.inputs import parse, parse_time
from app.intake import accepted
from app.models import (
    AttemptPage,
    DeliveryOut,
    EventAccepted,
    EventCreate,
    EventOut,
    EventPage,
    EventReplay,
    EventReplayed,
)
from app.records import Delivery, Event


def event_out(e: Event, deliveries: list[Delivery] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": e.id,
        "type": e.type,
        "created_at": to_rfc3339(e.created_at),
        "idempotency_key": e.idempotency_key,
        "ordering_key": e.ordering_key,
        "parameters": parameters_of(e),
    }
    if deliveries is not None:
        out["deliveries"] = [delivery_out(d) for d in deliveries]
    return out


def _idempotency_key(headers: Mapping[str, str], spec: EventCreate) -> str | None:
    header = headers.get("idempotency-key")
    if header is not None and spec.id is not None and header != spec.id:
        raise ValidationFailed.field("id", "differs from the Idempotency-Key header")
    return spec.id if spec.id is not None else header


@documented(
    "Publish an event (idempotent by id or Idempotency-Key; 200: a repeat)",
    request=EventCreate,
    response=EventAccepted,
    status=202,
    also=(200, 409),
    hot=True,
)
async def publish(
    hub_: Hub, tenant_id: str, headers: Mapping[str, str], raw: Any
) -> tuple[int, Any]:
    """A hot route (app/api/hot.py): plain ASGI in front of Starlette."""
    spec = parse(EventCreate, raw)
    await hub_.catalog.check_event(tenant_id, spec.type, spec.parameters)
    published = await hub_.events.publish(
        tenant_id,
        spec.type,
        spec.parameters,
        idempotency_key=_idempotency_key(headers, spec),
        ordering_key=spec.ordering_key,
    )
    if not published.same_request:
        raise hub_.events.conflict(published.event, spec.type, spec.parameters, spec.ordering_key)
    return accepted(published)


def _time_filter(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    return None if raw is None else id_floor("evt", parse_time(name, raw))


@documented(
    "List events, newest first",
    response=EventPage,
    query=(
        *PAGE,
        Param("type", {"type": "string", "maxLength": 200}),
        Param("since", MOMENT),
        Param("until", MOMENT),
        Param("customerNumber", {"type": "string", "maxLength": 255}),
    ),
)
async def list_(request: Request) -> Response:
    tenant_id = await tenant(request)
    cursor, limit = page(request)
    filters = {
        "cursor": cursor,
        "since_id": _time_filter(request, "since"),
        "until_id": _time_filter(request, "until"),
        "type": query_text(request, "type", 200),
        "customer_number": query_text(request, "customerNumber"),
    }
    items = await hub(request).events.page(tenant_id, filters, limit + 1)
    return paginated(items, limit, event_out, lambda e: e.id)


@documented("Get an event with one delivery per endpoint", response=EventOut)
async def get(request: Request) -> Response:
    tenant_id = await tenant(request)
    the_hub = hub(request)
    event = await the_hub.events.get(tenant_id, path_id(request))
    deliveries = await the_hub.events.deliveries(tenant_id, event.id)
    return JSON(event_out(event, deliveries))


@documented("Get a delivery", response=DeliveryOut)
async def delivery(request: Request) -> Response:
    tenant_id = await tenant(request)
    return JSON(delivery_out(await hub(request).events.delivery(tenant_id, path_id(request))))


@documented("List a delivery's attempts, newest first", response=AttemptPage, query=PAGE)
async def attempts(request: Request) -> Response:
    tenant_id = await tenant(request)
    cursor, limit = page(request)
    items = await hub(request).events.attempts(tenant_id, path_id(request), cursor, limit + 1)
    return paginated(items, limit, attempt_out, lambda a: a.id)


HOT = {("POST", "/v1/events"): HotEndpoint(publish)}


@documented(
    "Re-send an event: to one endpoint, or to every endpoint that matches it now",
    request=EventReplay,
    response=EventReplayed,
    status=202,
)
async def replay(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, EventReplay)
    event_id = path_id(request)
    deliveries = await hub(request).replays.replay_event(tenant_id, event_id, spec.endpoint_id)
    answer = {
        "event_id": event_id,
        "deliveries": [{"id": d.id, "endpoint_id": d.endpoint_id} for d in deliveries],
    }
    return JSON(answer, status_code=202)


routes = [
    Route("/v1/events", HOT[("POST", "/v1/events")], methods=["POST"]),
    Route("/v1/events", list_, methods=["GET"]),
    Route("/v1/events/{id}", get, methods=["GET"]),
    Route("/v1/events/{id}/replay", replay, methods=["POST"]),
    Route("/v1/deliveries/{id}", delivery, methods=["GET"]),
    Route("/v1/deliveries/{id}/attempts", attempts, methods=["GET"]),
]
