"""/v1/price-models: versioned price models (a PATCH makes a new version)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON, body, hub, page, paginated, path_id, query_int, tenant
from app.api.openapi import PAGE, Param, documented
from app.billing.models import PriceModelOut, PriceModelPage, PriceModelPatch, PriceModelSpec
from app.clock import to_rfc3339
from app.records import PriceModel

MAX_VERSION = 1_000_000


def price_model_out(model: PriceModel) -> dict[str, Any]:
    return {
        "id": model.id,
        "version": model.version,
        **model.spec,
        "created_at": to_rfc3339(model.created_at),
    }


@documented("Create a price model", request=PriceModelSpec, response=PriceModelOut, status=201)
async def create(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, PriceModelSpec)
    model = await hub(request).price_models.create(tenant_id, spec)
    return JSON(price_model_out(model), status_code=201)


@documented("List price models (latest versions)", response=PriceModelPage, query=PAGE)
async def list_(request: Request) -> Response:
    tenant_id = await tenant(request)
    cursor, limit = page(request)
    items = await hub(request).price_models.page(tenant_id, cursor, limit + 1)
    return paginated(items, limit, price_model_out, lambda m: m.id)


@documented(
    "Get a price model: the latest version, or ?version=n",
    response=PriceModelOut,
    query=(Param("version", {"type": "integer", "minimum": 1, "maximum": MAX_VERSION}),),
)
async def get(request: Request) -> Response:
    tenant_id = await tenant(request)
    version = query_int(request, "version", 1, MAX_VERSION)
    model = await hub(request).price_models.get(tenant_id, path_id(request), version)
    return JSON(price_model_out(model))


@documented(
    "Change a price model: creates its next version",
    request=PriceModelPatch,
    response=PriceModelOut,
)
async def patch(request: Request) -> Response:
    tenant_id = await tenant(request)
    changes = await body(request, PriceModelPatch)
    model = await hub(request).price_models.patch(tenant_id, path_id(request), changes)
    return JSON(price_model_out(model))


routes = [
    Route("/v1/price-models", create, methods=["POST"]),
    Route("/v1/price-models", list_, methods=["GET"]),
    Route("/v1/price-models/{id}", get, methods=["GET"]),
    Route("/v1/price-models/{id}", patch, methods=["PATCH"]),
]
