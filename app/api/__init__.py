"""The HTTP API: thin routes that parse, call one use case, and render."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.api import endpoints, events, operations, tenants
from app.api.errors import HANDLERS

ROUTES: list[BaseRoute] = [*operations.routes, *tenants.routes, *endpoints.routes, *events.routes]

__all__ = ["HANDLERS", "ROUTES"]
