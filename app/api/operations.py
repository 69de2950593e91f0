"""Unauthenticated operational routes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import metrics
from app.api.http import JSON, hub
from app.api.openapi import documented
from app.errors import Unavailable
from app.models import HealthOut


@documented(
    "Liveness: 200 when the store answers and this process's worker (if it runs one) is alive, "
    "with how far behind the workers are; 503 otherwise",
    response=HealthOut,
    auth="none",
    also=(503,),
)
async def healthz(request: Request) -> Response:
    try:
        found = await hub(request).liveness()
    except Exception as exc:
        raise Unavailable(f"store does not answer: {exc}") from exc
    return JSON(found, status_code=200 if found["status"] == "ok" else 503)


async def prometheus(request: Request) -> Response:
    the_hub = hub(request)
    now = the_hub.clock.now_ms()
    due = await the_hub.events.oldest_due(now)
    metrics.OLDEST_DUE_AGE.set(0 if due is None else (now - due) / 1000)
    return Response(metrics.render(), media_type="text/plain; version=0.0.4")


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/metrics", prometheus, methods=["GET"]),
]
