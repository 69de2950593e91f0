"""/v1/subscriptions/{id}/changes and /cancel: change a subscription's plan or units, cancel
it, and list, edit, withdraw or execute the changes queued for a later date."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.billing import subscription_out
from app.api.http import JSON, body, hub, page, paginated, path_id, tenant
from app.api.openapi import PAGE, documented
from app.billing.models import (
    ChangeAnswer,
    ChangeEdit,
    ChangeOut,
    ChangePage,
    SubscriptionCancel,
    SubscriptionChange,
)
from app.clock import to_rfc3339
from app.hub import Hub
from app.records import SubscriptionChangeRecord


def change_out(change: SubscriptionChangeRecord) -> dict[str, Any]:
    return {
        "id": change.id,
        "subscriptionId": change.subscription_id,
        "kind": change.kind,
        "status": change.status,
        "effectiveDate": change.effective_date,
        "request": {k: v for k, v in change.spec.items() if k != "asked"},
        "result": change.result,
        "created_at": to_rfc3339(change.created_at),
        "updated_at": to_rfc3339(change.updated_at),
    }


def _key(request: Request) -> str | None:
    return request.headers.get("idempotency-key")


async def _made(
    request: Request, making: Awaitable[tuple[SubscriptionChangeRecord, bool]]
) -> Response:
    """201 and the change, or 200 when an Idempotency-Key repeated an earlier request."""
    change, created = await making
    return await _answer(hub(request), change, 201 if created else 200)


async def _answer(hub_: Hub, change: SubscriptionChangeRecord, status: int) -> Response:
    sub = await hub_.bills.subscription(change.tenant_id, change.subscription_id)
    body_ = {"change": change_out(change), "subscription": subscription_out(sub)}
    return JSON(body_, status_code=status)


@documented(
    "Change a subscription's price model, variables or both: now (prorated), at the period "
    "end or on a date (queued); upgrades default to now, downgrades to the period end. With "
    "an Idempotency-Key a repeat answers the first change (200)",
    request=SubscriptionChange,
    response=ChangeAnswer,
    status=201,
    also=(200, 409),
)
async def create(request: Request) -> Response:
    tenant_id, spec = await tenant(request), await body(request, SubscriptionChange)
    return await _made(
        request, hub(request).changes.change(tenant_id, path_id(request), spec, _key(request))
    )


@documented(
    "Cancel a subscription at the period end (default), now or on a date; unused time is "
    "credited and an early-termination fee charged before the contract's end (Idempotency-Key "
    "as for changes)",
    request=SubscriptionCancel,
    response=ChangeAnswer,
    status=201,
    also=(200, 409),
)
async def cancel(request: Request) -> Response:
    tenant_id, spec = await tenant(request), await body(request, SubscriptionCancel)
    return await _made(
        request, hub(request).changes.cancel(tenant_id, path_id(request), spec, _key(request))
    )


@documented("List a subscription's changes, newest first", response=ChangePage, query=PAGE)
async def list_(request: Request) -> Response:
    tenant_id = await tenant(request)
    cursor, limit = page(request)
    items = await hub(request).changes.page(tenant_id, path_id(request), cursor, limit + 1)
    return paginated(items, limit, change_out, lambda c: c.id)


@documented("Get a change of a subscription", response=ChangeOut)
async def get(request: Request) -> Response:
    tenant_id = await tenant(request)
    found = await hub(request).changes.get(
        tenant_id, path_id(request), path_id(request, "change_id")
    )
    return JSON(change_out(found))


@documented(
    "Edit a queued change (its date, plan, variables or proration)",
    request=ChangeEdit,
    response=ChangeOut,
    also=(409,),
)
async def edit(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, ChangeEdit)
    change = await hub(request).changes.edit(
        tenant_id, path_id(request), path_id(request, "change_id"), spec
    )
    return JSON(change_out(change))


@documented("Withdraw a queued change", response=ChangeOut, also=(409,))
async def withdraw(request: Request) -> Response:
    tenant_id = await tenant(request)
    change = await hub(request).changes.withdraw(
        tenant_id, path_id(request), path_id(request, "change_id")
    )
    return JSON(change_out(change))


@documented("Execute a queued change now (effective today)", response=ChangeAnswer, also=(409,))
async def execute(request: Request) -> Response:
    tenant_id = await tenant(request)
    change = await hub(request).changes.execute(
        tenant_id, path_id(request), path_id(request, "change_id")
    )
    return await _answer(hub(request), change, 200)


ITEM = "/v1/subscriptions/{id}/changes/{change_id}"
routes = [
    Route("/v1/subscriptions/{id}/changes", create, methods=["POST"]),
    Route("/v1/subscriptions/{id}/changes", list_, methods=["GET"]),
    Route("/v1/subscriptions/{id}/cancel", cancel, methods=["POST"]),
    Route(ITEM, get, methods=["GET"]),
    Route(ITEM, edit, methods=["PATCH"]),
    Route(f"{ITEM}/cancel", withdraw, methods=["POST"]),
    Route(f"{ITEM}/execute", execute, methods=["POST"]),
]
