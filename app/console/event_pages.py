"""Events and deliveries: search, one event's exact payload with its deliveries and every
attempt, and resending it to one endpoint or all."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.access import Session
from app.console.guard import changing, form_text, viewing
from app.console.render import done, page
from app.errors import ValidationFailed
from app.hub import Hub
from app.ids import id_floor
from app.inputs import parse_time

PAGE_SIZE = 50
ATTEMPTS_SHOWN = 20  # per delivery, newest first
ENDPOINTS_LISTED = 200  # to resend to (and to name the deliveries' URLs)
SEARCH_FIELDS = ("id", "type", "customer", "contract", "transaction", "since", "until")


@viewing
async def events(request: Request, hub: Hub, found: Session) -> Response:
    query = {name: (request.query_params.get(name) or "").strip() for name in SEARCH_FIELDS}
    for name, value in query.items():
        if len(value) > 255:
            raise ValidationFailed.field(name, "must be at most 255 characters")
    filters = {
        "cursor": request.query_params.get("cursor") or None,
        "type": query["type"] or None,
        "customer_number": query["customer"] or None,
        "contract": query["contract"] or None,
        "since_id": _moment(query, "since"),
        "until_id": _moment(query, "until"),
    }
    items = await hub.events.search(found.tenant, filters, PAGE_SIZE + 1,
                                    query["transaction"] or None, query["id"] or None)  # fmt: skip
    shown = items[:PAGE_SIZE]
    return page(
        request, found, "events.html",
        events=shown, query=query, types=await known_types(hub, found.tenant),
        statuses=await hub.events.delivery_statuses(found.tenant, shown),
        next_cursor=items[PAGE_SIZE - 1].id if len(items) > PAGE_SIZE else None,
    )  # fmt: skip


async def known_types(hub: Hub, tenant_id: str) -> list[str]:
    """What a type box offers: the catalog (built in and declared) and the types the tenant
    published lately (free-form ones too)."""
    catalog = [t.name for t in await hub.catalog.list(tenant_id)]
    return sorted(set(catalog) | set(await hub.events.types_of(tenant_id)))


def _moment(query: dict[str, str], name: str) -> str | None:
    """A datetime-local or date field, read as UTC, as the id floor of that moment."""
    return id_floor("evt", parse_time(name, query[name])) if query[name] else None


@viewing
async def event(request: Request, hub: Hub, found: Session) -> Response:
    the_event = await hub.events.get(found.tenant, request.path_params["id"])
    endpoints = await hub.endpoints.list(found.tenant, None, ENDPOINTS_LISTED)
    named = {e.id: e for e in endpoints}
    deliveries: list[dict[str, Any]] = []
    for d in await hub.events.deliveries(found.tenant, the_event.id):
        attempts = await hub.events.attempts(found.tenant, d.id, None, ATTEMPTS_SHOWN)
        deliveries.append(
            {"delivery": d, "attempts": attempts, "endpoint": named.get(d.endpoint_id)}
        )
    return page(
        request, found, "event.html",
        event=the_event, deliveries=deliveries, endpoints=endpoints,
    )  # fmt: skip


@changing
async def resend(request: Request, hub: Hub, found: Session) -> Response:
    event_id = request.path_params["id"]
    endpoint_id = form_text(await request.form(), "endpoint_id")
    sent = await hub.replays.replay_event(found.tenant, event_id, endpoint_id)
    return done(request, "resent", "console:event", n=len(sent), id=event_id)
