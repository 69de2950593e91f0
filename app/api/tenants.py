"""/v1/tenants: admin-only tenant and key management (BILLHOOK_ADMIN_TOKEN)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON, admin, body, hub, page, paginated, path_id, tenant
from app.api.openapi import PAGE, documented
from app.clock import to_rfc3339
from app.models import KeyCreate, KeyList, KeyOut, TenantCreate, TenantOut, TenantPage
from app.records import ApiKey, Tenant


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


def key_out(key: ApiKey, secret: str | None = None) -> dict[str, object]:
    out = KeyOut(
        id=key.id,
        tenant_id=key.tenant_id,
        name=key.name,
        api_key=secret,
        created_at=to_rfc3339(key.created_at) or "",
        last_used_at=to_rfc3339(key.last_used_at),
        revoked_at=to_rfc3339(key.revoked_at),
    )
    return out.model_dump(exclude_none=True)


async def _key_spec(request: Request) -> KeyCreate:
    """The body is optional: an empty POST adds an unnamed key, as it always did."""
    return await body(request, KeyCreate) if await request.body() else KeyCreate()


async def added_key(request: Request, tenant_id: str) -> Response:
    spec = await _key_spec(request)
    key, secret = await hub(request).tenancy.add_key(
        tenant_id, spec.name, spec.replaces, spec.overlap_s * 1000
    )
    return JSON(key_out(key, secret), status_code=201)


@documented(
    "Add an API key to a tenant (or rotate one: `replaces`, `overlap_s`)",
    request=KeyCreate,
    response=KeyOut,
    status=201,
    auth="admin",
    also=(404,),
)
async def add_key(request: Request) -> Response:
    admin(request)
    return await added_key(request, path_id(request))


@documented("A tenant's API keys (never the keys themselves)", response=KeyList, auth="admin")
async def list_keys(request: Request) -> Response:
    admin(request)
    keys = await hub(request).tenancy.keys(path_id(request))
    return JSON({"data": [key_out(k) for k in keys]})


@documented("Revoke an API key", status=204, auth="admin")
async def revoke_key(request: Request) -> Response:
    admin(request)
    await hub(request).tenancy.revoke_key(path_id(request), path_id(request, "key_id"))
    return Response(status_code=204)


@documented(
    "Add an API key to your tenant (or rotate yours: `replaces`, `overlap_s`)",
    request=KeyCreate,
    response=KeyOut,
    status=201,
    also=(404,),
)
async def add_own_key(request: Request) -> Response:
    return await added_key(request, await tenant(request))


@documented("Your tenant's API keys: names, when made, last used, revoked", response=KeyList)
async def list_own_keys(request: Request) -> Response:
    keys = await hub(request).tenancy.keys(await tenant(request))
    return JSON({"data": [key_out(k) for k in keys]})


@documented("Revoke one of your tenant's API keys (the one you call with, too)", status=204)
async def revoke_own_key(request: Request) -> Response:
    tenant_id = await tenant(request)
    await hub(request).tenancy.revoke_key(tenant_id, path_id(request, "key_id"))
    return Response(status_code=204)


routes = [
    Route("/v1/keys", add_own_key, methods=["POST"]),
    Route("/v1/keys", list_own_keys, methods=["GET"]),
    Route("/v1/keys/{key_id}", revoke_own_key, methods=["DELETE"]),
    Route("/v1/tenants", create, methods=["POST"]),
    Route("/v1/tenants", list_, methods=["GET"]),
    Route("/v1/tenants/{id}/keys", add_key, methods=["POST"]),
    Route("/v1/tenants/{id}/keys", list_keys, methods=["GET"]),
    Route("/v1/tenants/{id}/keys/{key_id}", revoke_key, methods=["DELETE"]),
]
