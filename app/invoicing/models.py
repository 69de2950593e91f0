"""Invoice request and answer shapes (camelCase like the seed; money as JSON numbers)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from app.fields import Input, Name, Output, Positive, PricedItem, Quantity

Moment = Annotated[str, StringConstraints(strict=True, min_length=10, max_length=40)]
Country = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{2}$")]
VatId = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{2}[A-Za-z0-9+*.]{2,13}$")]
InvoiceStatus = Literal["finalized", "partially_credited", "credited"]


class Finalize(Input):
    """Which open billing information to finalize (all of the tenant's by default)."""

    customerNumber: Name | None = None
    externalContractId: Name | None = None
    up_to: Moment | None = None  # billing information created up to then (RFC 3339 or date)


class CreditItem(Input):
    """A line of the invoice and how much of it: a quantity, a gross amount, or (neither) all
    that remains of it."""

    line: Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
    quantity: Quantity | None = None
    amount: Positive | None = None

    @model_validator(mode="after")
    def _one_measure(self) -> CreditItem:
        if self.quantity is not None and self.amount is not None:
            raise ValueError("give a quantity or an amount, not both")
        return self


class CreditNoteCreate(Input):
    """No `items`: a full cancellation of what remains of the invoice."""

    items: list[CreditItem] | None = Field(None, min_length=1, max_length=1000)
    reason: Name


class Seller(Input):
    """The tenant's own legal details, printed on (and snapshotted into) every invoice."""

    name: Name
    street: Name | None = None
    streetNumber: Annotated[str, StringConstraints(strict=True, max_length=32)] | None = None
    postalCode: Name | None = None
    postalPlace: Name | None = None
    countryCode: Country
    vatId: VatId | None = None
    taxNumber: Name | None = None
    legalRegistrationId: Name | None = Field(
        None, description="BT-30, e.g. the commercial register number (HRB 12345)"
    )
    email: Name | None = None

    @model_validator(mode="after")
    def _identified(self) -> Seller:
        """EN 16931 needs the seller identified (BR-CO-26: a VAT id or a legal registration
        id) and, for VAT-rated lines, taxed (BR-S-02, BR-Z-02: a VAT id or a tax number)."""
        if self.vatId is None and (self.legalRegistrationId is None or self.taxNumber is None):
            raise ValueError(
                "EN 16931 needs the seller's vatId, or both legalRegistrationId and taxNumber "
                "(rules BR-CO-26 and BR-S-02)"
            )
        return self


# -- answers ----------------------------------------------------------------------------------


class InvoiceOut(Output):
    number: str
    status: InvoiceStatus
    customerNumber: str
    externalContractId: str | None
    currency: str
    invoiceDate: str
    totalGrossAmount: Decimal
    totalNetAmount: Decimal
    creditedAmount: Decimal
    event_id: str
    created_at: str
    creditNotes: list[str] | None = None
    rebilledBy: str | None = None  # the invoice that replaced this one (POST …/rebill)
    document: dict[str, Any] | None = None  # the invoice as notified (invoices/invoiceFinalized)


class InvoicePage(Output):
    data: list[InvoiceOut]
    next_cursor: str | None


class Finalized(Output):
    invoices: list[InvoiceOut]


class CreditNoteOut(Output):
    number: str
    invoiceNumber: str
    totalGrossAmount: Decimal
    totalNetAmount: Decimal
    event_id: str
    created_at: str
    document: dict[str, Any]  # the credit note as notified (invoices/creditNoteCreated)


class Rebill(Input):
    """The corrected lines of the invoice that replaces the rebilled one."""

    reason: Name
    items: list[PricedItem] = Field(min_length=1, max_length=1000)


class Rebilled(Output):
    creditNote: CreditNoteOut
    invoice: InvoiceOut
