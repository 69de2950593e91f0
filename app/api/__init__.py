"""The HTTP API: thin routes that parse, call one use case, and render."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.api import (
    batches,
    billing,
    billing_information,
    console_links,
    endpoints,
    event_types,
    events,
    invoices,
    openapi,
    operations,
    price_models,
    replays,
    subscription_changes,
    tenants,
)
from app.api.errors import HANDLERS
from app.catalog import envelopes

_API: list[BaseRoute] = [
    *operations.routes,
    *tenants.routes,
    *endpoints.routes,
    *events.routes,
    *event_types.routes,
    *replays.routes,
    *price_models.routes,
    *batches.routes,
    *billing.routes,
    *billing_information.routes,
    *subscription_changes.routes,
    *invoices.routes,
    *console_links.routes,
]
OPENAPI = openapi.build(_API, envelopes())
ROUTES: list[BaseRoute] = [*_API, *openapi.routes(OPENAPI)]
HOT = {**events.HOT, **billing.HOT}

__all__ = ["HANDLERS", "HOT", "OPENAPI", "ROUTES"]
