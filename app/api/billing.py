"""Billing routes: usage completions, one-off charges, bills, and the subscriptions bills start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.hot import HotEndpoint
from app.api.http import JSON, hub, page, paginated, path_id, read_json, tenant
from app.api.openapi import PAGE, documented
from app.billing.models import (
    Bill,
    BillAccepted,
    BillingAccepted,
    Charge,
    SubscriptionOut,
    SubscriptionPage,
    UsageCompletion,
)
from app.billing.service import Recorded
from app.clock import to_rfc3339
from app.hub import Hub
from app.inputs import parse
from app.intake import billed
from app.invoicing.views import invoice_out
from app.records import Subscription


def _accepted(recorded: Recorded) -> JSON:
    status, body = billed(recorded)
    return JSON(body, status_code=status)


def subscription_out(sub: Subscription) -> dict[str, Any]:
    terms = sub.terms
    return {
        "id": sub.id,
        "customerNumber": sub.customer_number,
        "externalContractId": sub.external_contract_id,
        "productId": sub.product_id,
        "priceModelId": sub.price_model_id,
        "priceModelVersion": sub.price_model_version,
        "status": sub.status,
        "anchor": terms["anchor"],
        "interval": terms["interval"],
        "billInArrears": terms["in_arrears"],
        "nextPeriodStart": sub.next_period_start,
        "nextBillAt": to_rfc3339(sub.next_bill_at) if sub.status == "active" else None,
        "cyclesBilled": sub.cycles_billed,
        "created_at": to_rfc3339(sub.created_at),
    }


@documented(
    "Record a finished usage; answers the preliminary billing information (200: a repeat)",
    request=UsageCompletion,
    response=BillingAccepted,
    status=202,
    also=(200, 409),
    hot=True,
)
async def usage_completion(
    hub_: Hub, tenant_id: str, headers: Mapping[str, str], raw: Any
) -> tuple[int, Any]:
    """A hot route (app/api/hot.py): plain ASGI in front of Starlette."""
    recorded = await hub_.billing.complete_usage(tenant_id, parse(UsageCompletion, raw), raw)
    return billed(recorded)


@documented(
    "Bill a one-off fee, penalty, add-on or correction (200: a repeat)",
    request=Charge,
    response=BillingAccepted,
    status=202,
    also=(200, 409),
)
async def charge(request: Request) -> Response:
    tenant_id = await tenant(request)
    raw = await read_json(request)
    spec = parse(Charge, raw)
    key = request.headers.get("idempotency-key")
    return _accepted(await hub(request).billing.charge(tenant_id, spec, raw, key))


@documented(
    "Bill against a price model or one-off items; recurring models start a subscription",
    request=Bill,
    response=BillAccepted,
    status=202,
    also=(200, 409),
)
async def bill(request: Request) -> Response:
    tenant_id = await tenant(request)
    raw = await read_json(request)
    outcome = await hub(request).bills.bill(tenant_id, parse(Bill, raw), raw)
    recorded, sub = outcome.recorded, outcome.subscription
    body = {
        "event_id": recorded.event.id if recorded else None,
        "billing_information": recorded.parameters if recorded else None,
        "subscription": subscription_out(sub) if sub else None,
        "invoice": invoice_out(outcome.invoice, full=True) if outcome.invoice else None,
    }
    created = recorded.created if recorded else sub is not None and sub.cycles_billed == 0
    return JSON(body, status_code=202 if created else 200)


@documented("List subscriptions started by bills", response=SubscriptionPage, query=PAGE)
async def subscriptions(request: Request) -> Response:
    tenant_id = await tenant(request)
    cursor, limit = page(request)
    items = await hub(request).bills.subscriptions(tenant_id, cursor, limit + 1)
    return paginated(items, limit, subscription_out, lambda s: s.id)


@documented("Get a subscription", response=SubscriptionOut)
async def subscription(request: Request) -> Response:
    tenant_id = await tenant(request)
    return JSON(
        subscription_out(await hub(request).bills.subscription(tenant_id, path_id(request)))
    )


HOT = {("POST", "/v1/usage-completions"): HotEndpoint(usage_completion)}

routes = [
    Route("/v1/usage-completions", HOT[("POST", "/v1/usage-completions")], methods=["POST"]),
    Route("/v1/charges", charge, methods=["POST"]),
    Route("/v1/bills", bill, methods=["POST"]),
    Route("/v1/subscriptions", subscriptions, methods=["GET"]),
    Route("/v1/subscriptions/{id}", subscription, methods=["GET"]),
]
