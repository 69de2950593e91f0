"""/v1/console-links: one-time sign-in links to the console, scoped to a tenant and a role."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON, body, hub, one_header
from app.api.openapi import documented
from app.clock import to_rfc3339
from app.models import ConsoleLinkCreate, ConsoleLinkOut


@documented(
    "Mint a console link: one use, expiring, for a tenant in a role (a tenant key mints for "
    "its own tenant only, as viewer or operator; the admin token for any tenant, or as admin)",
    request=ConsoleLinkCreate,
    response=ConsoleLinkOut,
    status=201,
    auth="either",
    also=(404,),
)
async def create(request: Request) -> Response:
    access = hub(request).access
    grantor = await access.grantor(one_header(request.headers.getlist("authorization")))
    spec = await body(request, ConsoleLinkCreate)
    token, expires, tenant_id = await access.create_link(
        grantor, spec.tenant_id, spec.role, spec.expires_in_s
    )
    out = ConsoleLinkOut(
        url=str(request.url_for("console:link", token=token)),
        role=spec.role,
        tenant_id=tenant_id,
        expires_at=to_rfc3339(expires) or "",
    )
    return JSON(out.model_dump(), status_code=201)


routes = [Route("/v1/console-links", create, methods=["POST"])]
