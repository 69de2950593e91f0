"""Every failure leaves as {"error": {"code", "message", "details"}}; nothing else escapes."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON
from app.errors import ApiError, RateLimited, Unavailable

log = logging.getLogger("billhook.api")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


def extra_headers(exc: ApiError) -> dict[str, str]:
    if exc.status == 401:
        return {"www-authenticate": "Bearer"}
    if isinstance(exc, Unavailable | RateLimited):
        return {"retry-after": str(exc.retry_after_s)}
    return {}


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSON(exc.body(), status_code=exc.status, headers=extra_headers(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() != "allow"}
    if exc.status_code == 405:
        headers["allow"] = ", ".join(allowed_methods(request))
    body = {"error": {"code": code, "message": str(exc.detail), "details": []}}
    return JSON(body, status_code=exc.status_code, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path: one path is often several routes (GET
    /v1/events and POST /v1/events), and Starlette's 405 names only the first one's."""
    path = request.url.path
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return sorted(methods)


INTERNAL_ERROR = {"error": {"code": "internal_error", "message": "internal error", "details": []}}


async def unexpected(request: Request, exc: Exception) -> Response:
    log.exception(
        "unhandled error",
        exc_info=exc,
        extra={"method": request.method, "path": request.url.path},
    )
    return JSON(INTERNAL_ERROR, status_code=500)


HANDLERS = {ApiError: api_error, HTTPException: http_error, Exception: unexpected}
