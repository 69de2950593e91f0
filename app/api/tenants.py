"""/v1/tenants: admin-only tenant and key management (BILLHOOK_ADMIN_TOKEN)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON, admin, body, hub, page, paginated, path_id
from app.api.openapi import PAGE, documented
from app.clock import to_rfc3339
from app.models import KeyOut, TenantCreate, TenantOut, TenantPage
from app.records import Tenant


def _tenant_out(t: Tenant) -> dict[str, object]:
    return TenantOut(id=t.id, name=t.name, created_at=to_rfc3339(t.created_at) or "").model_dump(
        exclude_none=True
    )


@documented(
    "Create a tenant; the answer shows its API key once",
    request=TenantCreate,
    response=TenantOut,
    status=201,
    auth="admin",
    also=(409,),
)
async def create(request: Request) -> Response:
    admin(request)
    spec = await body(request, TenantCreate)
    tenant, key, secret = await hub(request).tenancy.create(spec.name)
    out = TenantOut(
        id=tenant.id,
        name=tenant.name,
        created_at=to_rfc3339(tenant.created_at) or "",
        api_key=secret,
        key_id=key.id,
    )
    return JSON(out.model_dump(), status_code=201)


@documented("List tenants", response=TenantPage, auth="admin", query=PAGE)
async def list_(request: Request) -> Response:
    admin(request)
    cursor, limit = page(request)
    items = await hub(request).tenancy.list(cursor, limit + 1)
    return paginated(items, limit, _tenant_out, lambda t: t.id)


@documented("Add an API key to a tenant", response=KeyOut, status=201, auth="admin")
async def add_key(request: Request) -> Response:
    admin(request)
    key, secret = await hub(request).tenancy.add_key(path_id(request))
    out = KeyOut(
        id=key.id,
        tenant_id=key.tenant_id,
        api_key=secret,
        created_at=to_rfc3339(key.created_at) or "",
    )
    return JSON(out.model_dump(), status_code=201)


@documented("Revoke an API key", status=204, auth="admin")
async def revoke_key(request: Request) -> Response:
    admin(request)
    await hub(request).tenancy.revoke_key(path_id(request), path_id(request, "key_id"))
    return Response(status_code=204)


routes = [
    Route("/v1/tenants", create, methods=["POST"]),
    Route("/v1/tenants", list_, methods=["GET"]),
    Route("/v1/tenants/{id}/keys", add_key, methods=["POST"]),
    Route("/v1/tenants/{id}/keys/{key_id}", revoke_key, methods=["DELETE"]),
]
