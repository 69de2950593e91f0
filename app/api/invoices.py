"""/v1/invoices, /v1/credit-notes and /v1/seller: finalized invoices, corrected only by credit
notes. No route changes or deletes an invoice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON, body, hub, page, paginated, path_id, query_text, tenant
from app.api.openapi import PAGE, Param, documented
from app.errors import NotFound, ValidationFailed
from app.inputs import parse_time
from app.invoicing.documents import Credit
from app.invoicing.models import (
    CreditNoteCreate,
    CreditNoteOut,
    Finalize,
    Finalized,
    InvoiceOut,
    InvoicePage,
    Rebill,
    Rebilled,
    Seller,
)
from app.invoicing.service import Filters, InvoiceService
from app.invoicing.views import STATUSES, credit_note_out, invoice_out


@documented(
    "Finalize open billing information into invoices (one per customer, contract, currency)",
    request=Finalize,
    response=Finalized,
    status=201,
    also=(200, 409),
)
async def finalize(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, Finalize)
    filters = Filters(
        spec.customerNumber,
        spec.externalContractId,
        parse_time("up_to", spec.up_to) if spec.up_to else None,
    )
    made = await hub(request).invoices.finalize(tenant_id, filters)
    invoices = [invoice_out(doc, full=True) for doc in made]
    return JSON({"invoices": invoices}, status_code=201 if invoices else 200)


@documented(
    "List invoices, newest first",
    response=InvoicePage,
    query=(
        *PAGE,
        Param("customerNumber", {"type": "string", "maxLength": 255}),
        Param("status", {"type": "string", "enum": list(STATUSES)}),
    ),
)
async def list_(request: Request) -> Response:
    tenant_id = await tenant(request)
    cursor, limit = page(request)
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise ValidationFailed.field("status", f"one of {', '.join(STATUSES)}")
    filters = {"customer_number": query_text(request, "customerNumber"), "status": status}
    items = await hub(request).invoices.page(tenant_id, filters, cursor, limit + 1)
    return paginated(items, limit, invoice_out, lambda d: d.id)


@documented("Get an invoice: the document as finalized, and its credit notes", response=InvoiceOut)
async def get(request: Request) -> Response:
    tenant_id = await tenant(request)
    invoices = hub(request).invoices
    doc = await invoices.get(tenant_id, path_id(request, "number"))
    notes = [n.number for n in await invoices.credit_notes(tenant_id, doc.number)]
    rebilled_by = await hub(request).rebills.rebilled_by(tenant_id, doc.number)
    return JSON(invoice_out(doc, full=True, notes=notes, rebilled_by=rebilled_by))


@documented(
    "The invoice as an EN 16931 e-invoice (CII XML, Factur-X profile EN16931); 409 when "
    "EN 16931 cannot express it (three-decimal currencies)",
    also=(409,),
    media="application/xml",
)
async def e_invoice(request: Request) -> Response:
    return await _file(request, lambda s: s.e_invoice, "xml")


@documented(
    "The credit note as an EN 16931 e-invoice (CII XML, TypeCode 381, referencing its invoice "
    "as BT-25); 409 when EN 16931 cannot express it",
    also=(409,),
    media="application/xml",
)
async def credit_note_e_invoice(request: Request) -> Response:
    return await _file(request, lambda s: s.credit_note_e_invoice, "xml")


@documented(
    "The invoice as a PDF/A-3 for people, with its e-invoice embedded (Factur-X EN16931); "
    "409 when EN 16931 cannot express it",
    also=(409,),
    media="application/pdf",
)
async def invoice_pdf(request: Request) -> Response:
    return await _file(request, lambda s: s.invoice_pdf, "pdf")


@documented(
    "The credit note as a PDF/A-3 for people, with its e-invoice embedded (Factur-X "
    "EN16931); 409 when EN 16931 cannot express it",
    also=(409,),
    media="application/pdf",
)
async def credit_note_pdf(request: Request) -> Response:
    return await _file(request, lambda s: s.credit_note_pdf, "pdf")


MEDIA = {"xml": "application/xml", "pdf": "application/pdf"}


Rendering = Callable[[InvoiceService], Callable[[str, str], Awaitable[bytes]]]


async def _file(request: Request, rendering: Rendering, kind: str) -> Response:
    """A document of the number in the path as a download: its e-invoice or its PDF."""
    tenant_id = await tenant(request)
    number = path_id(request, "number")
    content = await rendering(hub(request).invoices)(tenant_id, number)
    headers = {"content-disposition": f'attachment; filename="{number}.{kind}"'}
    return Response(content, media_type=MEDIA[kind], headers=headers)


@documented(
    "Correct an invoice: a credit note of some lines or amounts, or (no items) of all the rest",
    request=CreditNoteCreate,
    response=CreditNoteOut,
    status=201,
    also=(409,),
)
async def create_credit_note(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, CreditNoteCreate)
    credits = (
        None if spec.items is None else [Credit(i.line, i.quantity, i.amount) for i in spec.items]
    )
    doc = await hub(request).invoices.credit(
        tenant_id, path_id(request, "number"), credits, spec.reason
    )
    return JSON(credit_note_out(doc), status_code=201)


@documented(
    "Rebill an invoice: a full credit note of it and a new invoice with the corrected lines, "
    "in one transaction, linked both ways and both notified",
    request=Rebill,
    response=Rebilled,
    status=201,
    also=(409,),
)
async def rebill(request: Request) -> Response:
    tenant_id = await tenant(request)
    spec = await body(request, Rebill)
    rebills = hub(request).rebills
    number = path_id(request, "number")
    note, invoice = await rebills.rebill(tenant_id, number, spec.items, spec.reason)
    body_ = {"creditNote": credit_note_out(note), "invoice": invoice_out(invoice, full=True)}
    return JSON(body_, status_code=201)


@documented("Get a credit note", response=CreditNoteOut)
async def credit_note(request: Request) -> Response:
    tenant_id = await tenant(request)
    doc = await hub(request).invoices.credit_note(tenant_id, path_id(request, "number"))
    return JSON(credit_note_out(doc))


@documented(
    "The seller details printed on this tenant's invoices (404 until they are set)",
    response=Seller,
    also=(404,),
)
async def get_seller(request: Request) -> Response:
    tenant_id = await tenant(request)
    seller = await hub(request).invoices.seller_of(tenant_id)
    if seller is None:
        raise NotFound("no seller details yet (PUT /v1/seller)")
    return JSON(seller)


@documented(
    "Set the seller details (later invoices carry them; earlier ones keep theirs)",
    request=Seller,
    response=Seller,
)
async def put_seller(request: Request) -> Response:
    tenant_id = await tenant(request)
    seller: dict[str, Any] = (await body(request, Seller)).model_dump(exclude_none=True)
    await hub(request).invoices.set_seller(tenant_id, seller)
    return JSON(seller)


routes = [
    Route("/v1/invoices/finalize", finalize, methods=["POST"]),
    Route("/v1/invoices", list_, methods=["GET"]),
    Route("/v1/invoices/{number}", get, methods=["GET"]),
    Route("/v1/invoices/{number}/e-invoice", e_invoice, methods=["GET"]),
    Route("/v1/invoices/{number}/pdf", invoice_pdf, methods=["GET"]),
    Route("/v1/invoices/{number}/credit-notes", create_credit_note, methods=["POST"]),
    Route("/v1/invoices/{number}/rebill", rebill, methods=["POST"]),
    Route("/v1/credit-notes/{number}", credit_note, methods=["GET"]),
    Route("/v1/credit-notes/{number}/e-invoice", credit_note_e_invoice, methods=["GET"]),
    Route("/v1/credit-notes/{number}/pdf", credit_note_pdf, methods=["GET"]),
    Route("/v1/seller", get_seller, methods=["GET"]),
    Route("/v1/seller", put_seller, methods=["PUT"]),
]
