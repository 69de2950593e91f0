"""/v1/event-types: the catalog of event types — the built-in ones with their JSON Schema and
an example, and the tenant's own, declared with an optional schema POST /v1/events enforces."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON, body, hub, path_id, tenant
from app.api.openapi import documented
from app.catalog import EventType
from app.models import EventTypeCreate, EventTypeOut, EventTypePage


def type_out(t: EventType) -> dict[str, Any]:
    return {
        "name": t.name,
        "description": t.description,
        "builtIn": t.built_in,
        "schema": t.schema,
        "example": t.example,
    }


@documented(
    "Every event type: the built-in ones (with the JSON Schema of the body a subscriber "
    "receives, and an example) and this tenant's own",
    response=EventTypePage,
)
async def list_(request: Request) -> Response:
    tenant_id = await tenant(request)
    types = await hub(request).catalog.list(tenant_id)
    return JSON({"data": [type_out(t) for t in types], "next_cursor": None})


@documented(
    "Declare an event type of this tenant's own, with an optional JSON Schema (draft 2020-12) "
    "of its parameters that POST /v1/events then enforces (422)",
    request=EventTypeCreate,
    response=EventTypeOut,
    status=201,
    also=(409,),
)
async def create(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, EventTypeCreate)
    declared = await hub(request).catalog.declare(
        tenant_id, spec.name, spec.description, spec.schema_
    )
    return JSON(type_out(declared), status_code=201)


@documented(
    "Remove an event type this tenant declared (409 while an endpoint subscribes to it)",
    status=204,
    also=(409,),
)
async def delete(request: Request) -> Response:
    tenant_id = await tenant(request)
    await hub(request).catalog.remove(tenant_id, path_id(request, "name"))
    return Response(status_code=204)


routes = [
    Route("/v1/event-types", list_, methods=["GET"]),
    Route("/v1/event-types", create, methods=["POST"]),
    Route("/v1/event-types/{name:path}", delete, methods=["DELETE"]),
]
