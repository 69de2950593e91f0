"""Rebills (Aria's gen_rb): an invoice with wrong lines is credited in full and replaced by an
invoice with the corrected lines, in one transaction: both numbered, linked both ways (the new
invoice's `rebillOf`, the credit note's `rebilledBy`, and the original's `rebilledBy` read
back), and both notified (`invoices/creditNoteCreated`, `invoices/invoiceFinalized`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from app.clock import Clock
from app.errors import NotFound, ValidationFailed
from app.events import EventService
from app.fields import PricedItem
from app.invoicing import documents
from app.invoicing.documents import Head
from app.invoicing.service import InvoiceService, refused_credits
from app.money import amount_limit, minor_units, plain
from app.records import Document
from app.store import Store
from app.store.invoices import GroupKey, RebillBuilder, Written


class RebillService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventService,
        invoices: InvoiceService,
        today: Callable[[], date],
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._invoices = invoices
        self._today = today

    async def rebill(
        self, tenant_id: str, number: str, items: list[PricedItem], reason: str
    ) -> tuple[Document, Document]:
        """(the credit note, the new invoice); 409 when the invoice is credited in full
        already or when there are no seller details, 422 for corrected lines that are no bill."""
        seller = await self._invoices.seller(tenant_id)
        issued = self._today()
        credit = self._invoices.credit_builder(tenant_id, None, reason)
        with refused_credits():
            written = await self._store.invoices.rebill(
                tenant_id, number, issued.year, credit, self._builder(tenant_id, items, seller)
            )
        if written is None:
            raise NotFound(f"no invoice {number}")
        note, invoice = written
        self._events.committed(len(note.event.deliveries) + len(invoice.event.deliveries))
        return note.document, invoice.document

    def _builder(
        self, tenant_id: str, items: list[PricedItem], seller: documents.Params
    ) -> RebillBuilder:
        issued, now = self._today(), self._clock.now_ms()
        lines = [i.model_dump() for i in items]

        async def build(original: Document, note: Document, n: int) -> Written:
            params = documents.load(original.document)
            places = minor_units(params["invoice"]["currency"])
            head = Head(f"INV-{issued.year}-{n:06d}", issued, seller)
            made = documents.rebill(head, params, lines, documents.load(note.document), places)
            _check(made["invoice"], places)
            key = GroupKey(
                params["customerNumber"], params["externalContractId"], made["invoice"]["currency"]
            )
            return await self._invoices.written(tenant_id, "inv", made, made["invoice"], now, key)

        return build

    async def rebilled_by(self, tenant_id: str, number: str) -> str | None:
        return await self._store.invoices.rebilled_by(tenant_id, number)


def _check(document: documents.Params, places: int) -> None:
    """The corrected lines must make a bill: not negative, every amount within the bounds."""
    if document["totalGrossAmount"] < 0:
        raise ValidationFailed.field(
            "items", f"the total {plain(document['totalGrossAmount'])} is negative"
        )
    limit = amount_limit(places)
    if (
        any(abs(line["grossAmount"]) >= limit for line in document["items"])
        or abs(document["totalGrossAmount"]) >= limit
    ):
        raise ValidationFailed.field("items", f"amounts must stay below {plain(limit)}")
