"""The admin's pages (the admin token's session): tenants with their queue depth, a tenant's
keys (create, shown once; revoke), and new tenants. The same Tenancy the API's /v1/tenants
calls."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.access import Session
from app.console.guard import admin_only, changing, form_text, viewing
from app.console.render import done, page
from app.errors import NotFound
from app.events import QUEUE_CAP
from app.hub import Hub
from app.inputs import parse
from app.models import TenantCreate

PAGE_SIZE = 50


@viewing
@admin_only
async def tenants(request: Request, hub: Hub, found: Session) -> Response:
    cursor = request.query_params.get("cursor") or None
    items = await hub.tenancy.list(cursor, PAGE_SIZE + 1)
    now = hub.clock.now_ms()
    rows = []
    for tenant in items[:PAGE_SIZE]:
        pending, oldest = await hub.events.queue(tenant.id)
        rows.append((tenant, pending, None if oldest is None else (now - oldest) // 1000))
    return page(
        request, found, "admin.html",
        rows=rows, cap=QUEUE_CAP,
        next_cursor=items[PAGE_SIZE - 1].id if len(items) > PAGE_SIZE else None,
    )  # fmt: skip


@changing
@admin_only
async def create_tenant(request: Request, hub: Hub, found: Session) -> Response:
    spec = parse(TenantCreate, {"name": form_text(await request.form(), "name") or ""})
    tenant, key, secret = await hub.tenancy.create(spec.name)
    return page(request, found, "key_created.html", 201, tenant=tenant, key=key, secret=secret)


@viewing
@admin_only
async def tenant(request: Request, hub: Hub, found: Session) -> Response:
    the_tenant = await hub.tenancy.get(request.path_params["id"])
    if the_tenant is None:
        raise NotFound(f"no tenant {request.path_params['id']}")
    keys = await hub.tenancy.keys(the_tenant.id)
    return page(request, found, "tenant.html", tenant=the_tenant, keys=keys)  # fmt: skip


@changing
@admin_only
async def add_key(request: Request, hub: Hub, found: Session) -> Response:
    tenant_id = request.path_params["id"]
    name = form_text(await request.form(), "name") or ""
    key, secret = await hub.tenancy.add_key(tenant_id, name[:100])
    the_tenant = await hub.tenancy.get(tenant_id)
    return page(request, found, "key_created.html", 201, tenant=the_tenant, key=key,
                secret=secret)  # fmt: skip


@changing
@admin_only
async def revoke_key(request: Request, hub: Hub, found: Session) -> Response:
    tenant_id = request.path_params["id"]
    await hub.tenancy.revoke_key(tenant_id, request.path_params["key_id"])
    return done(request, "revoked", "console:tenant", id=tenant_id)
