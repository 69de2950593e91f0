"""/v1/endpoints: webhook subscriptions, their secrets and the test ping."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON, body, hub, page, paginated, path_id, tenant
from app.api.openapi import PAGE, documented
from app.api.views import attempt_out
from app.clock import to_rfc3339
from app.models import (
    AttemptOut,
    CancelledOut,
    EndpointCreate,
    EndpointHealthOut,
    EndpointOut,
    EndpointPage,
    EndpointPatch,
    SecretOut,
)
from app.records import Endpoint


def endpoint_out(ep: Endpoint, *, with_secret: bool = False) -> dict[str, Any]:
    return EndpointOut(
        id=ep.id,
        type=ep.type,
        url=ep.url,
        config=ep.config,
        format=ep.format,
        cloudevents_mode=ep.cloudevents_mode,
        has_credentials=ep.credentials is not None,
        description=ep.description,
        event_types=None if ep.event_types is None else list(ep.event_types),
        filter=ep.filter,
        metadata=ep.metadata,
        rate_limit_per_s=ep.rate_limit_per_s,
        ordered=ep.ordered,
        status="disabled" if ep.status == "disabled" else ep.health,
        disabled_reason=ep.disabled_reason,
        created_at=to_rfc3339(ep.created_at) or "",
        updated_at=to_rfc3339(ep.updated_at) or "",
        lease_until=to_rfc3339(ep.lease_until),
        secret=ep.secret if with_secret else None,
    ).model_dump(exclude=None if with_secret else {"secret"})


@documented(
    "Register an endpoint; the answer carries its secret",
    request=EndpointCreate,
    response=EndpointOut,
    status=201,
)
async def create(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, EndpointCreate)
    endpoint = await hub(request).endpoints.create(tenant_id, spec)
    return JSON(endpoint_out(endpoint, with_secret=True), status_code=201)


@documented("List endpoints, newest first", response=EndpointPage, query=PAGE)
async def list_(request: Request) -> Response:
    tenant_id = await tenant(request)
    cursor, limit = page(request)
    items = await hub(request).endpoints.list(tenant_id, cursor, limit + 1)
    return paginated(items, limit, endpoint_out, lambda e: e.id)


@documented("Get an endpoint", response=EndpointOut)
async def get(request: Request) -> Response:
    tenant_id = await tenant(request)
    return JSON(endpoint_out(await hub(request).endpoints.get(tenant_id, path_id(request))))


@documented(
    "Change an endpoint (only the fields sent)", request=EndpointPatch, response=EndpointOut
)
async def patch(request: Request) -> Response:
    tenant_id = await tenant(request)
    changes = await body(request, EndpointPatch)
    endpoint = await hub(request).endpoints.update(tenant_id, path_id(request), changes)
    return JSON(endpoint_out(endpoint))


@documented("Delete an endpoint; its pending deliveries are cancelled", status=204)
async def delete(request: Request) -> Response:
    tenant_id = await tenant(request)
    await hub(request).endpoints.delete(tenant_id, path_id(request))
    return Response(status_code=204)


def _secret_out(ep: Endpoint) -> dict[str, Any]:
    expires = ep.previous_secret_expires_at if ep.previous_secret else None
    return SecretOut(secret=ep.secret, previous_secret_expires_at=to_rfc3339(expires)).model_dump()


@documented("Get the signing secret", response=SecretOut)
async def secret(request: Request) -> Response:
    tenant_id = await tenant(request)
    return JSON(_secret_out(await hub(request).endpoints.get(tenant_id, path_id(request))))


@documented("Rotate the secret; the old one signs alongside for 24 h", response=SecretOut)
async def rotate(request: Request) -> Response:
    tenant_id = await tenant(request)
    return JSON(
        _secret_out(await hub(request).endpoints.rotate_secret(tenant_id, path_id(request)))
    )


@documented("Send a signed webhook.test now; answers the attempt", response=AttemptOut)
async def test(request: Request) -> Response:
    tenant_id = await tenant(request)
    the_hub = hub(request)
    attempt = await the_hub.events.send_test(tenant_id, path_id(request), the_hub.deliverer)
    return JSON(attempt_out(attempt))


@documented(
    "Health: status, success rate and latency over the last hour, backlog",
    response=EndpointHealthOut,
)
async def health(request: Request) -> Response:
    tenant_id = await tenant(request)
    return JSON(await hub(request).endpoints.health(tenant_id, path_id(request)))


@documented(
    "Cancel the endpoint's pending deliveries (what it kept while disabled, say) instead of "
    "sending them when it is enabled again",
    response=CancelledOut,
)
async def cancel_pending(request: Request) -> Response:
    tenant_id = await tenant(request)
    cancelled = await hub(request).endpoints.cancel_pending(tenant_id, path_id(request))
    return JSON({"cancelled": cancelled})


@documented(
    "Renew a temporary endpoint's lease (lease_s from now); 409 once it lapsed",
    response=EndpointOut,
    also=(409,),
)
async def renew_lease(request: Request) -> Response:
    tenant_id = await tenant(request)
    endpoint = await hub(request).endpoints.renew_lease(tenant_id, path_id(request))
    return JSON(endpoint_out(endpoint))


routes = [
    Route("/v1/endpoints", create, methods=["POST"]),
    Route("/v1/endpoints", list_, methods=["GET"]),
    Route("/v1/endpoints/{id}", get, methods=["GET"]),
    Route("/v1/endpoints/{id}", patch, methods=["PATCH"]),
    Route("/v1/endpoints/{id}", delete, methods=["DELETE"]),
    Route("/v1/endpoints/{id}/secret", secret, methods=["GET"]),
    Route("/v1/endpoints/{id}/secret/rotate", rotate, methods=["POST"]),
    Route("/v1/endpoints/{id}/test", test, methods=["POST"]),
    Route("/v1/endpoints/{id}/health", health, methods=["GET"]),
    Route("/v1/endpoints/{id}/cancel-pending", cancel_pending, methods=["POST"]),
    Route("/v1/endpoints/{id}/lease", renew_lease, methods=["POST"]),
]
