"""What an invoice or a credit note shows: the API's answer and the console's page are the same
view of the stored, immutable document."""

from __future__ import annotations

from typing import Any

from app.clock import to_rfc3339
from app.invoicing import documents
from app.money import minor_units, quantum
from app.records import Document

STATUSES = ("finalized", "partially_credited", "credited")


def invoice_out(
    doc: Document,
    full: bool = False,
    notes: list[str] | None = None,
    rebilled_by: str | None = None,
) -> Any:
    params = documents.load(doc.document)
    invoice = params["invoice"]
    credited = doc.credited_minor * quantum(minor_units(invoice["currency"]))
    out = {
        "number": doc.number,
        "status": _status(doc),
        "customerNumber": params["customerNumber"],
        "externalContractId": params["externalContractId"],
        "currency": invoice["currency"],
        "invoiceDate": invoice["invoiceDate"],
        "totalGrossAmount": doc.total_gross,
        "totalNetAmount": doc.total_net,
        "creditedAmount": credited,
        "event_id": doc.event_id,
        "created_at": to_rfc3339(doc.created_at),
    }
    if not full:
        return out
    return {**out, "creditNotes": notes or [], "rebilledBy": rebilled_by, "document": params}


def credit_note_out(doc: Document) -> Any:
    return {
        "number": doc.number,
        "invoiceNumber": doc.invoice_number,
        "totalGrossAmount": doc.total_gross,
        "totalNetAmount": doc.total_net,
        "event_id": doc.event_id,
        "created_at": to_rfc3339(doc.created_at),
        "document": documents.load(doc.document),
    }


def _status(doc: Document) -> str:
    if doc.credited_minor == 0:
        return "finalized"
    return "credited" if doc.credited_minor >= doc.gross_minor else "partially_credited"
