"""Finalized invoices and credit notes: numbered inside the transaction that writes them.

The number comes from a counter row incremented in the same transaction as the document, the
billing information it consumes and its event: a failure anywhere rolls all of it back, number
included, so numbers stay gapless; SQLite's single writer (and, on PostgreSQL, the counter row's
lock) serialises concurrent finalizations. The database refuses updates and deletes of both
tables (triggers), so immutability does not depend on the code above it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.ids import id_ceiling
from app.records import Document, NewEvent
from app.store.connector import Connector, Row, Tx
from app.store.events import insert_events
from app.store.rows import from_row


@dataclass(frozen=True, slots=True)
class GroupKey:
    customer_number: str
    external_contract_id: str | None
    currency: str


@dataclass(frozen=True, slots=True)
class OpenItem:
    """Open billing information of a group, with its notified body."""

    id: str
    transaction_id: str
    event_id: str
    body: bytes
    memo: str | None
    metadata: str  # JSON


@dataclass(frozen=True, slots=True)
class Written:
    """What a builder hands back to be stored: the row, and its event with deliveries."""

    document: Document
    event: NewEvent
    columns: dict[str, Any]


class _NoInvoice(Exception):
    """Inside a transaction: the invoice is not there, undo what was drawn."""


class Stale(Exception):
    """Billing information was finalized by someone else meanwhile: nothing is written."""


InvoiceBuilder = Callable[[list[OpenItem], int], Awaitable[Written]]
# (the invoice, its earlier credit notes, this credit note's number, the rebill's number)
CreditBuilder = Callable[[Document, list[Document], int, int | None], Awaitable[Written]]
# (the original invoice, its full credit note, the new invoice's number)
RebillBuilder = Callable[[Document, Document, int], Awaitable[Written]]


def _document(row: Row) -> Document:
    return from_row(
        Document,
        row,
        document=bytes(row["document"]),
        total_gross=Decimal(row["total_gross"]),
        total_net=Decimal(row["total_net"]),
    )


class Invoices:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def open_groups(
        self, tenant_id: str, filters: dict[str, str | None], up_to: int, limit: int
    ) -> list[GroupKey]:
        params = {"tenant_id": tenant_id, "up_to": up_to, "limit": limit, **filters}
        rows = await self._db.fetch("billing_open_groups", params)
        return [_key(r) for r in rows]

    async def due_groups(self, before: int, limit: int) -> list[tuple[str, GroupKey]]:
        """Groups of any tenant whose oldest open billing information is older than `before`."""
        rows = await self._db.fetch("billing_open_due", {"before": before, "limit": limit})
        return [(r["tenant_id"], _key(r)) for r in rows]

    async def finalize(
        self,
        tenant_id: str,
        key: GroupKey,
        up_to: int,
        year: int,
        build: InvoiceBuilder,
        only: str | None = None,
        drafts: bool = False,
    ) -> Written | None:
        """One invoice of the group's open billing information (with its drafts if `drafts`;
        or only that of the event `only`, draft or open), with its number and event, in one
        transaction; None when nothing is open."""

        async def work(tx: Tx) -> Written | None:
            params = {"tenant_id": tenant_id, "up_to": up_to, "only": only,
                      "drafts": int(drafts), **_columns(key)}  # fmt: skip
            rows = await tx.fetch("billing_open_of_group", params)
            if not rows:
                return None
            items = [_open_item(r) for r in rows]
            written = await build(items, await _number(tx, tenant_id, "INV", year))
            await insert_events(tx, [written.event], {})
            await tx.execute("invoice_insert", written.columns)
            for item in items:
                mark = {"id": item.id, "number": written.document.number}
                if not await tx.fetch("billing_mark_invoiced", mark):
                    raise Stale(item.id)
            return written

        return await self._db.transact(work)

    async def credit(
        self, tenant_id: str, invoice_number: str, year: int, build: CreditBuilder
    ) -> Written | None:
        """A credit note of the invoice, checked against its earlier ones in the same
        transaction (so two at once cannot together exceed it); None if no such invoice."""

        async def work(tx: Tx) -> Written | None:
            return await credit_in(tx, tenant_id, invoice_number, year, build)

        return await self._db.transact(work)

    async def rebill(
        self,
        tenant_id: str,
        invoice_number: str,
        year: int,
        credit: CreditBuilder,
        rebilled: RebillBuilder,
    ) -> tuple[Written, Written] | None:
        """A full credit note of the invoice and the invoice that replaces it, numbered and
        written in one transaction (the new invoice's number is drawn first, so the credit note
        can name it); None if no such invoice."""

        async def work(tx: Tx) -> tuple[Written, Written] | None:
            number = await _number(tx, tenant_id, "INV", year)
            note = await credit_in(tx, tenant_id, invoice_number, year, credit, number)
            if note is None:
                raise _NoInvoice  # roll the drawn number back
            original = await tx.fetchrow(
                "invoice_get", {"tenant_id": tenant_id, "number": invoice_number}
            )
            assert original is not None
            written = await rebilled(_document(original), note.document, number)
            await insert_events(tx, [written.event], {})
            await tx.execute("invoice_insert", written.columns)
            return note, written

        try:
            return await self._db.transact(work)
        except _NoInvoice:
            return None

    async def rebilled_by(self, tenant_id: str, number: str) -> str | None:
        """The number of the invoice that rebilled this one, if any."""
        row = await self._db.fetchrow(
            "invoice_rebilled_by", {"tenant_id": tenant_id, "number": number}
        )
        return None if row is None else str(row["number"])

    async def get(self, tenant_id: str, number: str) -> Document | None:
        row = await self._db.fetchrow("invoice_get", {"tenant_id": tenant_id, "number": number})
        return _document(row) if row else None

    async def page(
        self, tenant_id: str, filters: dict[str, str | None], cursor: str | None, limit: int
    ) -> list[Document]:
        params = {"tenant_id": tenant_id, "cursor": cursor or id_ceiling("inv"), "limit": limit,
                  **filters}  # fmt: skip
        return [_document(r) for r in await self._db.fetch("invoice_list", params)]

    async def credit_notes(self, tenant_id: str, invoice_number: str) -> list[Document]:
        params = {"tenant_id": tenant_id, "invoice_number": invoice_number}
        return [_document(r) for r in await self._db.fetch("credit_notes_of_invoice", params)]

    async def credit_note(self, tenant_id: str, number: str) -> Document | None:
        row = await self._db.fetchrow("credit_note_get", {"tenant_id": tenant_id, "number": number})
        return _document(row) if row else None


async def credit_in(
    tx: Tx,
    tenant_id: str,
    invoice_number: str,
    year: int,
    build: CreditBuilder,
    rebill: int | None = None,
) -> Written | None:
    """A credit note checked against the invoice's earlier ones under the invoice's lock."""
    params = {"tenant_id": tenant_id, "number": invoice_number}
    await tx.execute("invoice_lock", params)  # one credit note of it at a time
    row = await tx.fetchrow("invoice_get", params)
    if row is None:
        return None
    earlier = await tx.fetch(
        "credit_notes_of_invoice", {"tenant_id": tenant_id, "invoice_number": invoice_number}
    )
    number = await _number(tx, tenant_id, "CN", year)
    written = await build(_document(row), [_document(r) for r in earlier], number, rebill)
    await insert_events(tx, [written.event], {})
    await tx.execute("credit_note_insert", written.columns)
    return written


async def _number(tx: Tx, tenant_id: str, series: str, year: int) -> int:
    row = await tx.fetchrow(
        "document_number", {"tenant_id": tenant_id, "series": series, "year": year}
    )
    assert row is not None
    return int(row["last"])


def _open_item(row: Row) -> OpenItem:
    return OpenItem(
        row["id"],
        row["transaction_id"],
        row["event_id"],
        bytes(row["body"]),
        row["memo"],
        row["metadata"],
    )


def _key(row: Row) -> GroupKey:
    return GroupKey(row["customer_number"], row["external_contract_id"], row["currency"])


def _columns(key: GroupKey) -> dict[str, Any]:
    return {
        "customer_number": key.customer_number,
        "external_contract_id": key.external_contract_id,
        "currency": key.currency,
    }
