"""Unauthenticated operational routes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON, hub
from app.errors import Unavailable


async def healthz(request: Request) -> Response:
    try:
        await hub(request).store.ping()
    except Exception as exc:
        raise Unavailable(f"store does not answer: {exc}") from exc
    return JSON({"status": "ok"})


routes = [Route("/healthz", healthz, methods=["GET"])]
