"""/openapi.json built from the routes and the pydantic models they declare; /docs renders it."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import swagger_ui
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app import __version__
from app.api.http import JSON
from app.errors import ValidationFailed
from app.models import ErrorOut

F = TypeVar("F", bound=Callable[..., Any])
Auth = Literal["tenant", "admin", "either", "none"]  # either: a tenant key or the admin token


@dataclass(frozen=True)
class Param:
    """A query parameter, with the bounds the route enforces."""

    name: str
    schema: dict[str, Any]
    description: str = ""


PAGE = (
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
    Param("cursor", {"type": "string", "maxLength": 200}, "next_cursor of the previous page"),
)
MOMENT = {"type": "string", "description": "RFC 3339 time or YYYY-MM-DD (midnight UTC)"}


@dataclass(frozen=True)
class Doc:
    summary: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    auth: Auth = "tenant"
    also: tuple[int, ...] = ()  # more answers it can give: 200 for a repeat, 409, 503, …
    query: tuple[Param, ...] = ()
    media: str = "application/json"  # of the success answer
    other: tuple[tuple[int, type[BaseModel]], ...] = ()  # successes of another shape


def documented(
    summary: str,
    *,
    request: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    auth: Auth = "tenant",
    also: tuple[int, ...] = (),
    query: tuple[Param, ...] = (),
    media: str = "application/json",
    other: tuple[tuple[int, type[BaseModel]], ...] = (),
    hot: bool = False,
) -> Callable[[F], F]:
    """Attach the route's contract; a Starlette handler also refuses query parameters the
    contract does not name (a typo must not silently widen a listing). Hot handlers (plain
    ASGI, app/api/hot.py) take no query parameters and refuse any there."""

    def attach(handler: F) -> F:
        doc = Doc(summary, request, response, status, auth, also, query, media, other)
        checked = handler if hot else _known_query_only(handler, {p.name for p in query})
        checked.__openapi__ = doc  # type: ignore[attr-defined]
        return checked

    return attach


def _known_query_only(handler: F, known: set[str]) -> F:
    @functools.wraps(handler)
    async def checked(request: Request) -> Response:
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            raise ValidationFailed.field(unknown[0], f"unknown query parameter (known: {allowed})")
        response: Response = await handler(request)
        return response

    return cast(F, checked)


def _models(routes: Sequence[BaseRoute]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {"ErrorOut": ErrorOut}
    for route in routes:
        doc: Doc | None = getattr(getattr(route, "endpoint", None), "__openapi__", None)
        for model in (doc.request, doc.response, *(m for _, m in doc.other)) if doc else ():
            if model is not None:
                found[model.__name__] = model
    return list(found.values())


_ERRORS = {
    400: "invalid_json (not JSON), or bad_request (more than one Authorization header)",
    401: "unauthorized: no or unknown API key",
    403: "forbidden: tenant administration is off (no BILLHOOK_ADMIN_TOKEN), or another "
    "tenant's resource",
    404: "not_found: no such resource for this tenant",
    409: "conflict: the request contradicts what is stored (the message says how)",
    413: "payload_too_large: more than 256 KiB",
    415: "unsupported_media_type: send content-type: application/json",
    422: "validation_error: details name each bad field",
    503: "unavailable: the store does not answer",
}


def error_statuses(route: Route, doc: Doc) -> set[int]:
    """What any route of this shape can answer besides its success: the one rule the API's
    plumbing follows (app/api/http.py), so the document cannot drift from it."""
    statuses = set(doc.also)
    if doc.auth != "none":
        statuses |= {400, 401, 503}  # 503: the database is away for a moment (Retry-After)
    if doc.auth in ("admin", "either"):
        statuses.add(403)
    if doc.request is not None:
        statuses |= {400, 413, 415, 422}
    if doc.query:
        statuses.add(422)
    if "{" in route.path:
        statuses.add(404)
    return statuses - {doc.status}


def document_path(path: str) -> str:
    """A route's path as OpenAPI writes it: `{name:path}` is `{name}` (no convertors)."""
    return re.sub(r"{(\w+):\w+}", r"{\1}", path)


def _operation(route: Route, doc: Doc) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "OK"}
    if doc.response is not None:
        success = _content(doc.response)
    elif doc.status != 204:
        success = {"description": "OK", "content": {doc.media: {"schema": {"type": "string"}}}}
    responses = {str(doc.status): success}
    for status, model in doc.other:
        responses[str(status)] = _content(model)
    for status in sorted(error_statuses(route, doc)):
        if status < 400:  # another success: a repeat answers the original, a dry run counts
            responses[str(status)] = success
        else:
            responses[str(status)] = _content(ErrorOut) | {"description": _ERRORS[status]}
    path = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)", route.path)
    ]
    query = [
        {"name": p.name, "in": "query", "required": False, "schema": p.schema}
        | ({"description": p.description} if p.description else {})
        for p in doc.query
    ]
    operation: dict[str, Any] = {
        "summary": doc.summary,
        "operationId": f"{route.name}",
        "responses": responses,
        "parameters": path + query,
    }
    if doc.request is not None:
        operation["requestBody"] = {"required": True, **_content(doc.request)}
    if doc.auth != "none":
        operation["security"] = [
            {name: []}
            for name in {"tenant": ["apiKey"], "admin": ["admin"], "either": ["apiKey", "admin"]}[
                doc.auth
            ]
        ]
    return operation


_SIGNED = [
    {
        "name": name,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": text,
    }
    for name, text in (
        ("webhook-id", "the event's id: the same on every retry (de-duplicate by it)"),
        ("webhook-timestamp", "unix seconds when this attempt was signed"),
        ("webhook-signature", "Standard Webhooks signature(s): v1,<base64 HMAC-SHA256>"),
    )
]


def _webhook(name: str, model: type[BaseModel]) -> dict[str, Any]:
    """What a subscriber receives for one event type, signed (Standard Webhooks)."""
    operation = {
        "summary": (model.__doc__ or name).strip(),
        "operationId": "webhook_" + re.sub(r"\W", "_", name),
        "parameters": _SIGNED,
        "requestBody": {"required": True, **_content(model)},
        "responses": {"2XX": {"description": "received; any other answer is retried"}},
    }
    return {"post": operation}


def _content(model: type[BaseModel]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"description": model.__doc__ or "OK", "content": {"application/json": {"schema": ref}}}


def build(
    routes: Sequence[BaseRoute], webhooks: Mapping[str, type[BaseModel]] | None = None
) -> dict[str, Any]:
    """The document of the routes, and (OpenAPI 3.1 `webhooks`) of the bodies the hub sends,
    by event type."""
    webhooks = webhooks or {}
    models = [*_models(routes), *webhooks.values()]
    _, schemas = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        doc = getattr(getattr(route, "endpoint", None), "__openapi__", None)
        if isinstance(route, Route) and doc is not None:
            for method in sorted((route.methods or set()) - {"HEAD"}):
                path = document_path(route.path)
                paths.setdefault(path, {})[method.lower()] = _operation(route, doc)
    return {
        "openapi": "3.1.0",
        "info": {"title": "billhook", "version": __version__},
        "paths": paths,
        "webhooks": {name: _webhook(name, model) for name, model in webhooks.items()},
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "tenant API key"},
                "admin": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "BILLHOOK_ADMIN_TOKEN",
                },
            },
        },
    }


# Swagger UI from the swagger-ui-py package, served by the hub itself: /docs works on a machine
# without internet, and the page has no inline script (CSP `default-src 'self'` holds).
_VIEWER = Path(swagger_ui.__file__).parent / "static"
_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>billhook API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/start.js"></script>
</body></html>"""
_DOCS_START = (
    'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", '
    "validatorUrl: null});\n"  # no badge fetched from validator.swagger.io
)
_SELF_ONLY = {"content-security-policy": "default-src 'self'; img-src 'self' data:"}


def routes(schema: dict[str, Any]) -> list[BaseRoute]:
    """/openapi.json (the document `build` made of the API's routes) and /docs."""

    async def openapi(request: Request) -> Response:
        return JSON(schema)

    async def docs(request: Request) -> Response:
        return HTMLResponse(_DOCS_PAGE, headers=_SELF_ONLY)

    async def start(request: Request) -> Response:
        return Response(_DOCS_START, media_type="text/javascript")

    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/start.js", start, methods=["GET"]),
        Mount("/docs/static", StaticFiles(directory=_VIEWER), name="docs-static"),
    ]
