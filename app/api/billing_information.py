"""/v1/billing-information: preliminary billing information by transactionId, and the draft
lifecycle (approve, discard, regenerate); /v1/settings: the tenant's settings."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON, body, hub, page, paginated, path_id, query_text, tenant
from app.api.openapi import PAGE, Param, documented
from app.billing.information import STATUSES
from app.billing.models import (
    BillingInformationOut,
    BillingInformationPage,
    Discard,
    Regenerate,
    SettingsOut,
    SettingsPatch,
)
from app.clock import to_rfc3339
from app.errors import ValidationFailed
from app.invoicing.models import InvoiceOut
from app.invoicing.views import invoice_out
from app.records import BillingRecord, Settings


def information_out(item: tuple[BillingRecord, dict[str, Any]]) -> dict[str, Any]:
    record, parameters = item
    return {
        "transactionId": record.transaction_id,
        "status": record.status,
        "statusReason": record.status_reason,
        "supersededBy": record.superseded_by,
        "invoiceNumber": record.invoice_number,
        "source": record.source,
        "subscriptionId": record.subscription_id,
        "eventId": record.event_id,
        "created_at": to_rfc3339(record.created_at),
        "parameters": parameters,
    }


@documented(
    "List billing information, newest first",
    response=BillingInformationPage,
    query=(
        *PAGE,
        Param("customerNumber", {"type": "string", "maxLength": 255}),
        Param("externalContractId", {"type": "string", "maxLength": 255}),
        Param("status", {"type": "string", "enum": list(STATUSES)}),
    ),
)
async def list_(request: Request) -> Response:
    tenant_id = await tenant(request)
    cursor, limit = page(request)
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise ValidationFailed.field("status", f"one of {', '.join(STATUSES)}")
    filters = {
        "customer_number": query_text(request, "customerNumber"),
        "external_contract_id": query_text(request, "externalContractId"),
        "status": status,
    }
    items = await hub(request).billing.page(tenant_id, filters, cursor, limit + 1)
    return paginated(items, limit, information_out, lambda item: item[0].id)


@documented("Get billing information by its transactionId", response=BillingInformationOut)
async def get(request: Request) -> Response:
    tenant_id = await tenant(request)
    found = await hub(request).drafts.get(tenant_id, path_id(request, "transaction_id"))
    return JSON(information_out(found))


@documented(
    "Approve a draft: it is finalized on an invoice of its own, now",
    response=InvoiceOut,
    status=201,
    also=(409,),
)
async def approve(request: Request) -> Response:
    tenant_id = await tenant(request)
    invoice = await hub(request).drafts.approve(tenant_id, path_id(request, "transaction_id"))
    return JSON(invoice_out(invoice, full=True), status_code=201)


@documented(
    "Discard a draft (kept, with the reason; `subscriptions/billingInformationDiscarded`)",
    request=Discard,
    response=BillingInformationOut,
    also=(409,),
)
async def discard(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, Discard)
    drafts = hub(request).drafts
    transaction_id = path_id(request, "transaction_id")
    await drafts.discard(tenant_id, transaction_id, spec.reason)
    return JSON(information_out(await drafts.get(tenant_id, transaction_id)))


@documented(
    "Regenerate a draft: re-priced from its inputs with the latest price models, it supersedes "
    "the draft under the next transactionId (`t~2`; `subscriptions/billingInformationSuperseded`)",
    request=Regenerate,
    response=BillingInformationOut,
    status=201,
    also=(409,),
)
async def regenerate(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, Regenerate)
    drafts = hub(request).drafts
    built = await drafts.regenerate(tenant_id, path_id(request, "transaction_id"), spec.reason)
    found = await drafts.get(tenant_id, built.record.transaction_id)
    return JSON(information_out(found), status_code=201)


def settings_out(settings: Settings, after_ms: int | None) -> dict[str, Any]:
    return {
        "autoFinalize": settings.auto_finalize,
        "autoFinalizeDrafts": settings.auto_finalize_drafts,
        "finalizeAfterSeconds": None if after_ms is None else after_ms / 1000,
        "freeFormEventTypes": settings.free_form_types,
    }


@documented(
    "The tenant's settings (automatic finalization, free-form event types)", response=SettingsOut
)
async def get_settings(request: Request) -> Response:
    tenant_id = await tenant(request)
    settings = hub(request).tenant_settings
    return JSON(settings_out(await settings.get(tenant_id), settings.finalize_after_ms))


@documented(
    "Change the tenant's settings: automatic finalization of open billing information "
    "(`autoFinalize`, on by default) and of drafts (`autoFinalizeDrafts`, off by default); "
    "`freeFormEventTypes` (off for new tenants): publish types not in the catalog",
    request=SettingsPatch,
    response=SettingsOut,
)
async def patch_settings(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, SettingsPatch)
    settings = hub(request).tenant_settings
    saved = await settings.change(
        tenant_id, auto_finalize=spec.autoFinalize, auto_finalize_drafts=spec.autoFinalizeDrafts,
        free_form_types=spec.freeFormEventTypes,
    )  # fmt: skip
    return JSON(settings_out(saved, settings.finalize_after_ms))


ITEM = "/v1/billing-information/{transaction_id}"
routes = [
    Route("/v1/billing-information", list_, methods=["GET"]),
    Route(ITEM, get, methods=["GET"]),
    Route(f"{ITEM}/approve", approve, methods=["POST"]),
    Route(f"{ITEM}/discard", discard, methods=["POST"]),
    Route(f"{ITEM}/regenerate", regenerate, methods=["POST"]),
    Route("/v1/settings", get_settings, methods=["GET"]),
    Route("/v1/settings", patch_settings, methods=["PATCH"]),
]
