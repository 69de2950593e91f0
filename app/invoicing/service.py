"""Finalization and credit notes: open billing information becomes numbered, immutable invoices.

Each group of open billing information (tenant, customer, contract, currency) becomes one
invoice in one transaction: number, document, the billing information marked invoiced, and the
`invoices/invoiceFinalized` event with its deliveries. Finalization runs on request and, after
`BILLHOOK_FINALIZE_AFTER`, on its own (the worker's periodic loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from app import jsoncodec
from app.clock import Clock
from app.errors import (
    CreditExceeded,
    EInvoiceUnavailable,
    NotFound,
    SellerMissing,
    ValidationFailed,
)
from app.events import EventService
from app.ids import new_id
from app.invoicing import documents, einvoice, pdf
from app.invoicing.documents import Credit, CreditRefused, Head, Source
from app.money import minor_units, plain, to_minor
from app.records import Document
from app.store import Store
from app.store.invoices import CreditBuilder, GroupKey, OpenItem, Stale, Written

log = logging.getLogger("billhook.invoicing")

PAGE = 100  # groups looked up at a time
Params = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Filters:
    customer_number: str | None = None
    external_contract_id: str | None = None
    up_to: int | None = None  # billing information created up to then (ms); default now


class InvoiceService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventService,
        today: Callable[[], date],
        finalize_after_s: float | None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._today = today  # in the business time zone
        self._after_ms = None if finalize_after_s is None else round(finalize_after_s * 1000)

    async def finalize(self, tenant_id: str, filters: Filters) -> list[Document]:
        """Every open group the filters select becomes an invoice (none open: an empty list)."""
        seller = await self.seller(tenant_id)
        up_to = filters.up_to if filters.up_to is not None else self._clock.now_ms()
        selection = {
            "customer_number": filters.customer_number,
            "external_contract_id": filters.external_contract_id,
        }
        finalized: list[Document] = []
        while True:
            groups = await self._store.invoices.open_groups(tenant_id, selection, up_to, PAGE)
            for key in groups:
                written = await self.finalize_group(tenant_id, key, up_to, seller)
                if written is not None:
                    finalized.append(written)
            if len(groups) < PAGE:
                return finalized

    async def finalize_one(self, tenant_id: str, key: GroupKey, event_id: str) -> Document | None:
        """The billing information of one event on an invoice of its own (a bill with
        `draft: false`); None if it was finalized meanwhile."""
        seller = await self.seller(tenant_id)
        now = self._clock.now_ms()
        return await self.finalize_group(tenant_id, key, now, seller, only=event_id)

    async def of_event(self, tenant_id: str, event_id: str) -> Document | None:
        """The invoice that finalized the billing information of this event, if any."""
        billing = await self._store.billing.of_event(event_id)
        if billing is None or billing.invoice_number is None:
            return None
        return await self._store.invoices.get(tenant_id, billing.invoice_number)

    async def finalize_group(
        self,
        tenant_id: str,
        key: GroupKey,
        up_to: int,
        seller: dict[str, Any],
        only: str | None = None,
        drafts: bool = False,
    ) -> Document | None:
        issued, now = self._today(), self._clock.now_ms()

        async def build(items: list[OpenItem], n: int) -> Written:
            number = f"INV-{issued.year}-{n:06d}"
            sources = [_source(item) for item in items]
            params = documents.invoice(Head(number, issued, seller), sources, _places(key))
            return await self.written(tenant_id, "inv", params, params["invoice"], now, key)

        try:
            written = await self._store.invoices.finalize(
                tenant_id, key, up_to, issued.year, build, only, drafts
            )
        except Stale:  # a concurrent finalization took it: nothing was written here
            return None
        if written is None:
            return None
        self._events.committed(len(written.event.deliveries))
        return written.document

    async def run_due(self) -> int:
        """The periodic job: groups whose oldest open item is older than the grace period, of
        tenants that finalize automatically (drafts too where the tenant says so)."""
        now = self._clock.now_ms()
        if self._after_ms is None:
            return 0
        done = 0
        for tenant_id, key in await self._store.invoices.due_groups(now - self._after_ms, PAGE):
            seller = await self._store.tenants.seller(tenant_id)
            if seller is None:
                log.warning("open billing information but no seller details (PUT /v1/seller): "
                            "not finalized", extra={"tenant_id": tenant_id})  # fmt: skip
                continue
            drafts = (await self._store.tenants.settings(tenant_id)).auto_finalize_drafts
            written = await self.finalize_group(tenant_id, key, now, seller, drafts=drafts)
            done += written is not None
        return done

    @property
    def finalize_after_ms(self) -> int | None:
        return self._after_ms

    async def credit(
        self,
        tenant_id: str,
        invoice_number: str,
        credits: Sequence[Credit] | None,
        reason: str,
    ) -> Document:
        """A credit note (partial, or everything that remains when `credits` is None)."""
        issued = self._today()
        build = self.credit_builder(tenant_id, credits, reason)
        with refused_credits():
            written = await self._store.invoices.credit(
                tenant_id, invoice_number, issued.year, build
            )
        if written is None:
            raise NotFound(f"no invoice {invoice_number}")
        self._events.committed(len(written.event.deliveries))
        return written.document

    def credit_builder(
        self, tenant_id: str, credits: Sequence[Credit] | None, reason: str
    ) -> CreditBuilder:
        """What the store calls, under the invoice's lock, to build a credit note."""
        issued, now = self._today(), self._clock.now_ms()

        async def build(
            invoice: Document, earlier: list[Document], n: int, rebill: int | None
        ) -> Written:
            params = documents.load(invoice.document)
            head = Head(f"CN-{issued.year}-{n:06d}", issued, params["invoice"]["seller"])
            previous = [documents.load(e.document) for e in earlier]
            places = minor_units(params["invoice"]["currency"])
            note = documents.credit_note(head, params, previous, credits, reason, places)
            if rebill is not None:
                note["creditNote"]["rebilledBy"] = f"INV-{issued.year}-{rebill:06d}"
            key = GroupKey(
                params["customerNumber"],
                params["externalContractId"],
                note["creditNote"]["currency"],
            )
            return await self.written(tenant_id, "cn", note, note["creditNote"], now, key)

        return build

    async def written(
        self,
        tenant_id: str,
        prefix: str,
        params: dict[str, Any],
        body: dict[str, Any],
        now: int,
        key: GroupKey,
    ) -> Written:
        """The row and the event (fanned out now) of an invoice or credit note document."""
        event_type = documents.INVOICE_EVENT if prefix == "inv" else documents.CREDIT_NOTE_EVENT
        new = await self._events.prepare(
            tenant_id, event_type, params, now, ordering_key=key.external_contract_id
        )
        gross: Decimal = body["totalGrossAmount"]
        document = Document(
            id=new_id(prefix, now),
            tenant_id=tenant_id,
            number=params["invoiceNumber"] if prefix == "inv" else params["creditNoteNumber"],
            document=jsoncodec.dumps(params),
            total_gross=gross,
            total_net=body["totalNetAmount"],
            event_id=new.event.id,
            created_at=now,
            customer_number=key.customer_number,
            invoice_number=None if prefix == "inv" else params["invoiceNumber"],
            gross_minor=to_minor(gross, _places(key)),
        )
        return Written(document, new, _columns(document, key, body))

    # -- reading ------------------------------------------------------------------------------

    async def get(self, tenant_id: str, number: str) -> Document:
        found = await self._store.invoices.get(tenant_id, number)
        if found is None:
            raise NotFound(f"no invoice {number}")
        return found

    async def e_invoice(self, tenant_id: str, number: str) -> bytes:
        """The invoice as EN 16931 CII XML, or 409 when EN 16931 cannot express it."""
        found = await self.get(tenant_id, number)
        try:
            return einvoice.cii(documents.load(found.document))
        except einvoice.NotRepresentable as exc:
            raise EInvoiceUnavailable(str(exc)) from exc

    async def credit_note_e_invoice(self, tenant_id: str, number: str) -> bytes:
        """The credit note as EN 16931 CII XML (TypeCode 381, BT-25 the invoice it corrects)."""
        note, invoice = await self._credit_note_with_invoice(tenant_id, number)
        try:
            return einvoice.credit_note_cii(note, invoice)
        except einvoice.NotRepresentable as exc:
            raise EInvoiceUnavailable(str(exc)) from exc

    async def invoice_pdf(self, tenant_id: str, number: str) -> bytes:
        """The invoice as PDF/A-3 with its e-invoice embedded (Factur-X EN16931)."""
        params = documents.load((await self.get(tenant_id, number)).document)
        xml = await self._e_invoice_if_any(self.e_invoice(tenant_id, number))
        page = pdf.invoice_page(params)
        return await asyncio.to_thread(
            pdf.render, page, params["invoice"], params["customerNumber"], xml
        )

    async def credit_note_pdf(self, tenant_id: str, number: str) -> bytes:
        """The credit note as PDF/A-3 with its e-invoice embedded (Factur-X EN16931)."""
        note, _ = await self._credit_note_with_invoice(tenant_id, number)
        xml = await self._e_invoice_if_any(self.credit_note_e_invoice(tenant_id, number))
        page = pdf.credit_note_page(note)
        return await asyncio.to_thread(
            pdf.render, page, note["creditNote"], note["customerNumber"], xml
        )

    @staticmethod
    async def _e_invoice_if_any(making: Awaitable[bytes]) -> bytes | None:
        """The e-invoice a PDF embeds; none when EN 16931 cannot express the document (three
        decimal currencies): the PDF is then a plain PDF/A-3, which any document can be."""
        try:
            return await making
        except EInvoiceUnavailable:
            return None

    async def _credit_note_with_invoice(self, tenant_id: str, number: str) -> tuple[Params, Params]:
        note = documents.load((await self.credit_note(tenant_id, number)).document)
        invoice = await self.get(tenant_id, note["invoiceNumber"])
        return note, documents.load(invoice.document)

    async def credit_notes(self, tenant_id: str, number: str) -> list[Document]:
        return await self._store.invoices.credit_notes(tenant_id, number)

    async def credit_note(self, tenant_id: str, number: str) -> Document:
        found = await self._store.invoices.credit_note(tenant_id, number)
        if found is None:
            raise NotFound(f"no credit note {number}")
        return found

    async def page(
        self, tenant_id: str, filters: dict[str, str | None], cursor: str | None, limit: int
    ) -> list[Document]:
        return await self._store.invoices.page(tenant_id, filters, cursor, limit)

    async def set_seller(self, tenant_id: str, seller: dict[str, Any]) -> None:
        await self._store.tenants.set_seller(tenant_id, seller)

    async def seller_of(self, tenant_id: str) -> dict[str, Any] | None:
        return await self._store.tenants.seller(tenant_id)

    async def seller(self, tenant_id: str) -> dict[str, Any]:
        seller = await self._store.tenants.seller(tenant_id)
        if seller is None:
            raise SellerMissing(
                "an invoice names its issuer: set the seller details first (PUT /v1/seller)"
            )
        return seller


@contextlib.contextmanager
def refused_credits() -> Iterator[None]:
    """A credit note the invoice does not allow: 409 when it would credit more than remains,
    else 422 about the field."""
    try:
        yield
    except CreditRefused as exc:
        if exc.conflict:
            details = [{"loc": exc.field.split("."), "msg": str(exc)}]
            raise CreditExceeded(str(exc), details) from exc
        raise ValidationFailed.field(exc.field, str(exc)) from exc


def _source(item: OpenItem) -> Source:
    parameters = documents.load(item.body)["parameters"]
    metadata = jsoncodec.loads(item.metadata)
    return Source(item.id, item.transaction_id, item.event_id, parameters, item.memo, metadata)


def _places(key: GroupKey) -> int:
    return minor_units(key.currency)


def _columns(document: Document, key: GroupKey, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": document.id,
        "tenant_id": document.tenant_id,
        "number": document.number,
        "customer_number": key.customer_number,
        "external_contract_id": key.external_contract_id,
        "currency": key.currency,
        "invoice_date": body.get("invoiceDate") or body.get("creditNoteDate"),
        "total_gross": plain(document.total_gross),
        "total_net": plain(document.total_net),
        "gross_minor": document.gross_minor,
        "document": document.document,
        "event_id": document.event_id,
        "created_at": document.created_at,
        "invoice_number": body.get("invoiceNumber"),
        "rebill_of": (body.get("rebillOf") or {}).get("invoiceNumber"),
    }
