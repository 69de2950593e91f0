"""Billing from the console: preliminary billing information per customer and contract,
finalizing what is open, invoices with their lines, VAT breakdown and credit notes, the
e-invoice to download, and credit notes under the API's own limits."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.access import Session
from app.billing.information import STATUSES as BILLING_STATUSES
from app.console.guard import changing, confirmed, form_text, viewing
from app.console.render import done, page, to
from app.errors import Conflict, ValidationFailed
from app.hub import Hub
from app.inputs import parse
from app.invoicing.documents import Credit
from app.invoicing.models import CreditNoteCreate, Finalize
from app.invoicing.service import Filters
from app.invoicing.views import STATUSES, credit_note_out, invoice_out

PAGE_SIZE = 50


def _filter(request: Request, name: str, allowed: tuple[str, ...] | None = None) -> str | None:
    value = (request.query_params.get(name) or "").strip() or None
    if value is not None and (len(value) > 255 or (allowed and value not in allowed)):
        why = f"one of {', '.join(allowed)}" if allowed else "at most 255 characters"
        raise ValidationFailed.field(name, why)
    return value


@viewing
async def billing(request: Request, hub: Hub, found: Session) -> Response:
    filters = {
        "customer_number": _filter(request, "customer"),
        "external_contract_id": _filter(request, "contract"),
        "status": _filter(request, "status", BILLING_STATUSES),
    }
    cursor = request.query_params.get("cursor") or None
    items = await hub.billing.page(found.tenant, filters, cursor, PAGE_SIZE + 1)
    failed = await hub.changes.failed(found.tenant, 20)
    return page(
        request, found, "billing.html", failed_changes=failed, finalize_all_text=FINALIZE_ALL,
        rows=items[:PAGE_SIZE], filters=filters, statuses=BILLING_STATUSES,
        next_cursor=items[PAGE_SIZE - 1][0].id if len(items) > PAGE_SIZE else None,
    )  # fmt: skip


@changing
async def finalize(request: Request, hub: Hub, found: Session) -> Response:
    """Open billing information of one customer (and contract), or all, into invoices."""
    form = await request.form()
    fields = {name: form_text(form, name) for name in ("customerNumber", "externalContractId")}
    spec = parse(Finalize, fields)
    if spec.customerNumber is None:
        confirmed(form, FINALIZE_ALL)
    made = await hub.invoices.finalize(
        found.tenant, Filters(spec.customerNumber, spec.externalContractId)
    )
    if len(made) == 1:
        return RedirectResponse(to(request, "console:invoice", number=made[0].number), 303)
    return done(request, "finalized", "console:invoices", n=len(made))


@viewing
async def invoices(request: Request, hub: Hub, found: Session) -> Response:
    filters = {"customer_number": _filter(request, "customer"),
               "status": _filter(request, "status", STATUSES)}  # fmt: skip
    cursor = request.query_params.get("cursor") or None
    items = await hub.invoices.page(found.tenant, filters, cursor, PAGE_SIZE + 1)
    return page(
        request, found, "invoices.html",
        rows=[invoice_out(d) for d in items[:PAGE_SIZE]], filters=filters, statuses=STATUSES,
        next_cursor=items[PAGE_SIZE - 1].id if len(items) > PAGE_SIZE else None,
    )  # fmt: skip


@viewing
async def invoice(request: Request, hub: Hub, found: Session) -> Response:
    return await _invoice_page(request, hub, found)


async def _invoice_page(
    request: Request, hub: Hub, found: Session, status: int = 200, **extra: Any
) -> Response:
    doc = await hub.invoices.get(found.tenant, request.path_params["number"])
    notes = await hub.invoices.credit_notes(found.tenant, doc.number)
    return page(request, found, "invoice.html", status, invoice=invoice_out(doc, full=True),
                notes=[credit_note_out(n) for n in notes], credit_all_text=CREDIT_ALL,
                **extra)  # fmt: skip


@viewing
async def e_invoice(request: Request, hub: Hub, found: Session) -> Response:
    return await _download(request, hub.invoices.e_invoice(found.tenant, _number(request)), "xml")


@viewing
async def invoice_pdf(request: Request, hub: Hub, found: Session) -> Response:
    return await _download(request, hub.invoices.invoice_pdf(found.tenant, _number(request)), "pdf")


@viewing
async def credit_note_e_invoice(request: Request, hub: Hub, found: Session) -> Response:
    document = hub.invoices.credit_note_e_invoice(found.tenant, _number(request))
    return await _download(request, document, "xml")


@viewing
async def credit_note_pdf(request: Request, hub: Hub, found: Session) -> Response:
    document = hub.invoices.credit_note_pdf(found.tenant, _number(request))
    return await _download(request, document, "pdf")


def _number(request: Request) -> str:
    return str(request.path_params["number"])


async def _download(request: Request, rendering: Awaitable[bytes], kind: str) -> Response:
    """A document as the API serves it (the same service, its 404 and 409 alike), saved
    under its number."""
    content = await rendering
    headers = {"content-disposition": f'attachment; filename="{_number(request)}.{kind}"'}
    return Response(content, media_type=DOWNLOADS[kind], headers=headers)


DOWNLOADS = {"xml": "application/xml", "pdf": "application/pdf"}
# What the confirmation boxes say (the templates show the same words).
FINALIZE_ALL = (
    "every customer's open billing information becomes numbered invoices, corrected from then "
    "on only by credit notes"
)
CREDIT_ALL = "a credit note for everything that remains of this invoice"


@changing
async def credit(request: Request, hub: Hub, found: Session) -> Response:
    """The API's checks, then the service's: a refusal (409) re-shows the invoice with the
    reason, and nothing is written."""
    form = await request.form()
    try:
        await hub.invoices.get(found.tenant, request.path_params["number"])  # 404 first
        if form.get("scope") != "lines":
            confirmed(form, CREDIT_ALL)
        spec = parse(CreditNoteCreate, _credit_fields(form))
        credits = None if spec.items is None else [
            Credit(i.line, i.quantity, i.amount) for i in spec.items
        ]  # fmt: skip
        await hub.invoices.credit(found.tenant, request.path_params["number"], credits,
                                  spec.reason)  # fmt: skip
    except (Conflict, ValidationFailed) as exc:
        return await _invoice_page(request, hub, found, exc.status, error=_reason(exc),
                                   sent=dict(form))  # fmt: skip
    return done(request, "credited", "console:invoice", number=request.path_params["number"])


def _credit_fields(form: FormData) -> dict[str, Any]:
    """Per line a quantity or an amount (or nothing: that line is not credited); no line
    given and "all" chosen: everything that remains."""
    if form.get("scope") == "all":
        return {"reason": form_text(form, "reason") or ""}
    items = []
    for key in form:
        if key.startswith("line_") and key.endswith("_measure"):
            line = key.removeprefix("line_").removesuffix("_measure")
            value = form_text(form, f"line_{line}_value")
            if value is not None and line.isdigit():
                items.append({"line": int(line), form.get(key) or "amount": value})
    return {"items": items or None, "reason": form_text(form, "reason") or ""}


def _reason(exc: Conflict | ValidationFailed) -> str:
    msgs = [str(d.get("msg")) for d in exc.details if isinstance(d, dict) and d.get("msg")]
    return exc.message + (": " + "; ".join(msgs) if msgs else "")
