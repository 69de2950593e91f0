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
DISCARDED = "subscriptions/billingInformationDiscarded"
SUPERSEDED = "subscriptions/billingInformationSuperseded"
SUBSCRIPTION_CHANGED = "subscriptions/subscriptionChanged"
SUBSCRIPTION_CANCELLED = "subscriptions/subscriptionCancelled"
# Every event type billing sends, the billing information's first.
EVENT_TYPES = (EVENT_TYPE, DISCARDED, SUPERSEDED, SUBSCRIPTION_CHANGED, SUBSCRIPTION_CANCELLED)
# draft: waits for approval (seed 001's draft: true); discarded and superseded are kept.
STATUSES = ("draft", "open", "invoiced", "discarded", "superseded")


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
    """The seed's item; a VAT category, and its exemption reason, only when given."""
    found = {
        "description": line.description,
        "grossUnitPrice": line.gross_unit_price,
        "quantity": line.quantity,
        "vatPercent": line.vat_percent,
        "productID": line.product_id,
        "externalContractId": contract,
    }
    if line.vat is not None:
        category, reason, code = line.vat
        found["vatCategory"] = category
        if reason:
            found["vatExemptionReason"] = reason
        if code:
            found["vatExemptionReasonCode"] = code
    return found


def vat_of(item_: dict[str, Any]) -> tuple[str, str | None, str | None] | None:
    """The VAT category an item was given, with its reason (None: the default one)."""
    if not item_.get("vatCategory"):
        return None
    return (
        item_["vatCategory"],
        item_.get("vatExemptionReason"),
        item_.get("vatExemptionReasonCode"),
    )


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


def lines_of(parameters_: dict[str, Any]) -> list[Line]:
    """The items of notified billing information as lines again."""
    return [
        Line(
            i["productID"],
            i["description"],
            Decimal(i["quantity"]),
            Decimal(i["grossUnitPrice"]),
            Decimal(i["vatPercent"]),
            vat_of(i),
        )
        for i in parameters_["invoice"]["items"]
    ]


def redraft(parameters_: dict[str, Any], transaction_id: str, lines: list[Line]) -> Draft:
    """Notified billing information as a Draft again, under a new transactionId and with other
    lines: the same reference, dates, addresses and contract (what superseding keeps)."""
    invoice = parameters_["invoice"]
    return Draft(
        transaction_id=transaction_id,
        customer_number=parameters_["customerNumber"],
        external_contract_id=parameters_["externalContractId"],
        order_reference=parameters_["orderReference"],
        order_channel=invoice["orderChannel"],
        order_date=date.fromisoformat(invoice["orderDate"]),
        invoice_date=date.fromisoformat(invoice["invoiceDate"]),
        due_date=date.fromisoformat(invoice["dueDate"]),
        invoice_reference=invoice["invoiceReference"],
        currency=invoice["currency"],
        billing_start=date.fromisoformat(invoice["billingStartDate"]),
        billing_end=date.fromisoformat(invoice["billingEndDate"]),
        bill_to=invoice["billToAddress"],
        ship_to=invoice["shipToAddress"],
        lines=tuple(lines),
    )
