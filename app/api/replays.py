"""/v1/replays: recover what an endpoint missed (or backfill a new one), paced and durable."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON, body, hub, page, paginated, path_id, tenant
from app.api.openapi import PAGE, documented
from app.clock import to_rfc3339
from app.models import ReplayCount, ReplayCreate, ReplayOut, ReplayPage
from app.replays import Progress, request_from


def replay_out(p: Progress) -> dict[str, Any]:
    r = p.replay
    return {
        "id": r.id,
        "endpoint_id": r.endpoint_id,
        "status": p.status,
        "matched": r.matched,
        "enqueued": r.enqueued,
        "succeeded": p.succeeded,
        "failed": p.failed,
        "pending": p.pending,
        "rate_per_s": r.rate_per_s,
        "since": to_rfc3339(r.since),
        "until": to_rfc3339(r.until),
        "created_at": to_rfc3339(r.created_at),
    }


@documented(
    "Start a replay (or, with dry_run, count what it would send: 200)",
    request=ReplayCreate,
    response=ReplayOut,
    status=202,
    other=((200, ReplayCount),),
)
async def create(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, ReplayCreate)
    wanted = request_from(spec)
    replays = hub(request).replays
    if spec.dry_run:
        return JSON(ReplayCount(matched=await replays.count(tenant_id, wanted)).model_dump())
    started = await replays.start(tenant_id, wanted)
    return JSON(replay_out(await replays.progress(tenant_id, started.id)), status_code=202)


@documented("List replays, newest first", response=ReplayPage, query=PAGE)
async def list_(request: Request) -> Response:
    tenant_id = await tenant(request)
    cursor, limit = page(request)
    progress = await hub(request).replays.page(tenant_id, cursor, limit + 1)
    return paginated(progress, limit, replay_out, lambda p: p.replay.id)


@documented("A replay's progress", response=ReplayOut)
async def get(request: Request) -> Response:
    tenant_id = await tenant(request)
    return JSON(replay_out(await hub(request).replays.progress(tenant_id, path_id(request))))


@documented(
    "Cancel a replay: nothing more is enqueued, what it enqueued and is pending is cancelled "
    "(422 when it is not running)",
    response=ReplayOut,
    also=(422,),
)
async def cancel(request: Request) -> Response:
    tenant_id = await tenant(request)
    return JSON(replay_out(await hub(request).replays.cancel(tenant_id, path_id(request))))


routes = [
    Route("/v1/replays", create, methods=["POST"]),
    Route("/v1/replays", list_, methods=["GET"]),
    Route("/v1/replays/{id}", get, methods=["GET"]),
    Route("/v1/replays/{id}/cancel", cancel, methods=["POST"]),
]
