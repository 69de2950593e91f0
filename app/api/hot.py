"""The hottest routes as plain ASGI, in front of Starlette.

POST /v1/events and POST /v1/usage-completions carry nearly all traffic. Measured on the
reference machine, Starlette's router, middleware and Request/Response objects cost about as
much CPU per request as the use case itself; served here, a hot request skips them and keeps
the same contract: the same body limits, auth, validation, error shape and OpenAPI entry (each
hot handler is also mounted in the Starlette router, which only sees what this misses).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app import jsoncodec
from app.api.errors import INTERNAL_ERROR, extra_headers
from app.api.http import decode_json, one_header
from app.errors import ApiError, ValidationFailed
from app.hub import Hub

log = logging.getLogger("billhook.api")

Headers = Mapping[str, str]
_WANTED = {b"authorization", b"content-type", b"content-length", b"idempotency-key"}
Handler = Callable[[Hub, str, Headers, Any], Awaitable[tuple[int, Any]]]


class HotEndpoint:
    """One hot handler as an ASGI app: auth, JSON body, handler, JSON answer or error."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.__openapi__ = getattr(handler, "__openapi__", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[str, str] = {}
        repeated: dict[bytes, list[str]] = {b"authorization": [], b"content-type": []}
        for k, v in scope["headers"]:
            if k in _WANTED:
                headers[k.decode("latin-1")] = v.decode("latin-1")
                if k in repeated:
                    repeated[k].append(headers[k.decode("latin-1")])
        try:
            hub: Hub = scope["app"].state.hub
            tenant_id = await hub.tenancy.tenant_for(one_header(repeated[b"authorization"]))
            if scope["query_string"]:
                raise ValidationFailed.field("query", "this route takes no query parameters")
            content_type = one_header(repeated[b"content-type"], "Content-Type")
            body = await decode_json(content_type, headers.get("content-length"), _chunks(receive))
            status, answer = await self.handler(hub, tenant_id, headers, body)
        except ApiError as exc:
            await _respond(send, exc.status, exc.body(), extra_headers(exc))
            return
        except Exception:
            log.exception(
                "unhandled error", extra={"method": scope["method"], "path": scope["path"]}
            )
            await _respond(send, 500, INTERNAL_ERROR)
            return
        await _respond(send, status, answer)


class HotRoutes:
    """Middleware: exact (method, path) matches go straight to their hot endpoint, skipping the
    router and exception middleware; everything else goes on to the app."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], HotEndpoint]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.routes.get((scope["method"], scope["path"]))
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _respond(
    send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None
) -> None:
    content = jsoncodec.dumps(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})
