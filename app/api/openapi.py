"""/openapi.json built from the routes and the pydantic models they declare; /docs renders it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import swagger_ui
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app import __version__
from app.api.http import JSON
from app.models import ErrorOut

F = TypeVar("F", bound=Callable[..., Any])
Auth = Literal["tenant", "admin", "none"]


@dataclass(frozen=True)
class Doc:
    summary: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    auth: Auth = "tenant"


def documented(
    summary: str,
    *,
    request: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    auth: Auth = "tenant",
) -> Callable[[F], F]:
    def attach(handler: F) -> F:
        handler.__openapi__ = Doc(summary, request, response, status, auth)  # type: ignore[attr-defined]
        return handler

    return attach


def _models(routes: Sequence[BaseRoute]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {"ErrorOut": ErrorOut}
    for route in routes:
        doc: Doc | None = getattr(getattr(route, "endpoint", None), "__openapi__", None)
        for model in (doc.request, doc.response) if doc else ():
            if model is not None:
                found[model.__name__] = model
    return list(found.values())


def _operation(route: Route, doc: Doc) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(doc.status): {"description": "OK"} if doc.response is None else _content(doc.response)
    }
    for status in (401, 404, 422) if doc.auth != "none" else ():
        responses[str(status)] = _content(ErrorOut) | {"description": "error"}
    operation: dict[str, Any] = {
        "summary": doc.summary,
        "operationId": f"{route.name}",
        "responses": responses,
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)", route.path)
        ],
    }
    if doc.request is not None:
        operation["requestBody"] = {"required": True, **_content(doc.request)}
    if doc.auth != "none":
        operation["security"] = [{"admin" if doc.auth == "admin" else "apiKey": []}]
    return operation


def _content(model: type[BaseModel]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"description": model.__doc__ or "OK", "content": {"application/json": {"schema": ref}}}


def build(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    models = _models(routes)
    _, schemas = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        doc = getattr(getattr(route, "endpoint", None), "__openapi__", None)
        if isinstance(route, Route) and doc is not None:
            for method in sorted((route.methods or set()) - {"HEAD"}):
                paths.setdefault(route.path, {})[method.lower()] = _operation(route, doc)
    return {
        "openapi": "3.1.0",
        "info": {"title": "billhook", "version": __version__},
        "paths": paths,
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


def routes(api_routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    schema = build(api_routes)

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
