"""Every failure leaves as {"error": {"code", "message", "details"}}; nothing else escapes."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.api.http import JSON
from app.errors import ApiError

log = logging.getLogger("billhook.api")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


def extra_headers(exc: ApiError) -> dict[str, str]:
    return {"www-authenticate": "Bearer"} if exc.status == 401 else {}


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSON(exc.body(), status_code=exc.status, headers=extra_headers(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    body = {"error": {"code": code, "message": str(exc.detail), "details": []}}
    return JSON(body, status_code=exc.status_code, headers=exc.headers)


INTERNAL_ERROR = {"error": {"code": "internal_error", "message": "internal error", "details": []}}


async def unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSON(INTERNAL_ERROR, status_code=500)


HANDLERS = {ApiError: api_error, HTTPException: http_error, Exception: unexpected}
