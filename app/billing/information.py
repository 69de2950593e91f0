"""Preliminary billing information: the `subscriptions/billingInformationAvailable` payload.

The shape is the seed's (../shared/seeds/003): keys of `parameters` and `invoice` in
alphabetical order, item keys in the seed's order, amounts as JSON numbers, dates YYYY-MM-DD.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from app.billing.pricing import Line
from app.money import Totals, quantum

EVENT_TYPE = "subscriptions/billingInformationAvailable"


@dataclass(frozen=True, slots=True)
class Draft:
    """Everything one billing information says, with every default already applied."""

    transaction_id: str
    customer_number: str
    external_contract_id: str | None
    order_reference: str | None
    order_channel: str | None
    order_date: date
    invoice_date: date
    due_date: date
    invoice_reference: str
    currency: str
    billing_start: date
    billing_end: date
    bill_to: dict[str, Any]
    ship_to: dict[str, Any]
    lines: tuple[Line, ...]


def item(line: Line, contract: str | None) -> dict[str, Any]:
    return {
        "description": line.description,
        "grossUnitPrice": line.gross_unit_price,
        "quantity": line.quantity,
        "vatPercent": line.vat_percent,
        "productID": line.product_id,
        "externalContractId": contract,
    }


def parameters(draft: Draft, totals: Totals, places: int) -> dict[str, Any]:
    unit = quantum(places)
    invoice = {
        "billToAddress": draft.bill_to,
        "billingEndDate": draft.billing_end.isoformat(),
        "billingStartDate": draft.billing_start.isoformat(),
        "currency": draft.currency,
        "dueDate": draft.due_date.isoformat(),
        "invoiceDate": draft.invoice_date.isoformat(),
        "invoiceReference": draft.invoice_reference,
        "items": [item(line, draft.external_contract_id) for line in draft.lines],
        "orderChannel": draft.order_channel,
        "orderDate": draft.order_date.isoformat(),
        "orderReference": draft.order_reference,
        "shipToAddress": draft.ship_to,
        "totalGrossAmount": totals.gross.quantize(unit),
        "totalNetAmount": totals.net.quantize(unit),
    }
    return {
        "customerNumber": draft.customer_number,
        "externalContractId": draft.external_contract_id,
        "invoice": invoice,
        "orderReference": draft.order_reference,
        "transactionId": draft.transaction_id,
    }


def total_of(parameters_: dict[str, Any]) -> Decimal:
    total: Decimal = parameters_["invoice"]["totalGrossAmount"]
    return total
