"""The payload of every event type billhook sends, as pydantic models: the JSON Schemas of the
event-type catalog (`GET /v1/event-types`) and of the `webhooks` section of /openapi.json come
from here, and tests validate what the hub really sends against them.

The hot paths build payloads as plain dicts (a model per event would cost accept throughput);
these models describe those dicts exactly (`extra="forbid"`), and tests/test_event_types.py
checks every type the hub sends against them, so the description cannot drift.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

Number = Annotated[Decimal, WithJsonSchema({"type": "number"})]
Day = Annotated[
    str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$"), WithJsonSchema({"type": "string", "format": "date"})
]
Millis = Annotated[int, Field(description="unix time in milliseconds")]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Postal(Payload):
    countryCode: str
    postalCode: str | None = None
    postalPlace: str | None = None
    street: str | None = None
    streetNumber: str | None = None


class EventAddress(_Postal):
    name: str | None = None
    vatId: str | None = Field(None, description="the buyer's VAT identifier (BT-48)")


class BillingItem(Payload):
    description: str
    grossUnitPrice: Number
    quantity: Number
    vatPercent: Number
    productID: str
    externalContractId: str | None
    vatCategory: Literal["S", "Z", "E", "AE", "K", "G"] | None = Field(
        None, description="EN 16931 VAT category, when it was given (else S, or Z at 0 %)"
    )
    vatExemptionReason: str | None = None
    vatExemptionReasonCode: str | None = None


class PreliminaryInvoice(Payload):
    """The preliminary invoice: seed 003's `invoice` object."""

    billToAddress: EventAddress
    billingEndDate: Day
    billingStartDate: Day
    currency: str
    dueDate: Day
    invoiceDate: Day
    invoiceReference: str
    items: list[BillingItem]
    orderChannel: str | None
    orderDate: Day
    orderReference: str | None
    shipToAddress: EventAddress
    totalGrossAmount: Number
    totalNetAmount: Number


class BillingInformationAvailable(Payload):
    """Preliminary billing information (seed 003's format exactly)."""

    customerNumber: str
    externalContractId: str | None
    invoice: PreliminaryInvoice
    orderReference: str | None
    transactionId: str


class BillingInformationDiscarded(Payload):
    """A draft was discarded (kept, with the reason)."""

    customerNumber: str
    externalContractId: str | None
    invoiceReference: str
    orderReference: str | None
    reason: str
    transactionId: str


class BillingInformationSuperseded(BillingInformationDiscarded):
    """Billing information was replaced by `supersededBy` (regenerated, or a proration added)."""

    supersededBy: str


class SubscriptionChanged(Payload):
    """A change of a subscription's plan or units was applied; `billed` names what it billed."""

    billed: list[str]
    changeId: str
    customerNumber: str
    effectiveDate: Day
    externalContractId: str
    priceModelId: str
    priceModelVersion: int
    proration: Literal["prorate", "none", "invoice_now"]
    status: str
    subscriptionId: str


class SubscriptionCancelled(SubscriptionChanged):
    """A subscription was cancelled."""

    reason: str | None


class SubscriptionChangeNotice(Payload):
    """A subscription change (or cancellation) waiting for its date: queued, edited or
    withdrawn (`status`: queued, cancelled)."""

    changeId: str
    customerNumber: str
    effectiveDate: Day
    externalContractId: str
    kind: Literal["change", "cancel"]
    priceModelId: str
    priceModelVersion: int
    proration: Literal["prorate", "none", "invoice_now"]
    status: Literal["queued", "cancelled", "failed"]
    subscriptionId: str


class SubscriptionChangeFailed(SubscriptionChangeNotice):
    """A queued subscription change could not be applied at its date: it ended `failed`, with
    the reason; the subscription goes on as it was (its cycles are billed as before)."""

    reason: str


class EventSeller(_Postal):
    name: str
    vatId: str | None = None
    taxNumber: str | None = None
    legalRegistrationId: str | None = None
    email: str | None = None


class VatGroup(Payload):
    grossAmount: Number
    netAmount: Number
    vatAmount: Number
    vatPercent: Number


class InvoiceLine(BillingItem):
    lineNumber: int
    grossAmount: Number
    netAmount: Number
    transactionId: str


class Preliminary(Payload):
    eventId: str | None
    invoiceReference: str
    memo: str | None
    metadata: dict[str, Any]
    totalGrossAmount: Number
    totalNetAmount: Number
    transactionId: str


class PreliminaryTotals(Payload):
    billingInformation: list[Preliminary]
    totalGrossAmount: Number
    totalNetAmount: Number


class Difference(Payload):
    grossAmount: Number
    netAmount: Number


class RebillOf(Payload):
    invoiceNumber: str
    invoiceDate: Day
    creditNoteNumber: str


class InvoiceDocument(Payload):
    billToAddress: EventAddress
    billingEndDate: Day
    billingStartDate: Day
    currency: str
    dueDate: Day
    invoiceDate: Day
    invoiceNumber: str
    notes: list[str]
    items: list[InvoiceLine]
    orderReference: str | None
    preliminary: PreliminaryTotals
    roundingDifference: Difference
    seller: EventSeller
    shipToAddress: EventAddress
    totalGrossAmount: Number
    totalNetAmount: Number
    totalVatAmount: Number
    vatBreakdown: list[VatGroup]
    rebillOf: RebillOf | None = Field(None, description="present on a rebill's invoice")


class InvoiceFinalized(Payload):
    """A finalized invoice: immutable, numbered without gaps."""

    customerNumber: str
    externalContractId: str | None
    invoice: InvoiceDocument
    invoiceNumber: str


class CreditLine(Payload):
    lineNumber: int
    description: str
    grossUnitPrice: Number
    quantity: Number
    vatPercent: Number
    productID: str
    grossAmount: Number
    netAmount: Number
    creditedQuantity: Number


class CreditNoteDocument(Payload):
    billToAddress: EventAddress
    creditNoteDate: Day
    creditNoteNumber: str
    currency: str
    invoiceNumber: str
    items: list[CreditLine]
    reason: str
    seller: EventSeller
    totalGrossAmount: Number
    totalNetAmount: Number
    totalVatAmount: Number
    vatBreakdown: list[VatGroup]
    rebilledBy: str | None = Field(None, description="present when a rebill issued it")


class CreditNoteCreated(Payload):
    """A credit note of an invoice (the only correction of an invoice)."""

    creditNote: CreditNoteDocument
    creditNoteNumber: str
    customerNumber: str
    externalContractId: str | None
    invoiceNumber: str


class _About(Payload):
    endpointId: str
    url: str


class EndpointFailing(_About):
    """An endpoint failed repeatedly: its deliveries are held and probed."""

    failingSince: Millis
    consecutiveFailures: int
    lastStatusCode: int | None
    lastError: str | None


class EndpointRecovered(_About):
    """A failing endpoint answered again: its held deliveries go."""

    failingSince: Millis | None
    recoveredAt: Millis


class EndpointDisabled(_About):
    """An endpoint was disabled (failing for too long, or by an operator)."""

    reason: str
    failingSince: Millis | None
    disabledAt: Millis


class AttemptsExhausted(Payload):
    """A delivery ran out of attempts."""

    endpointId: str
    eventId: str
    eventType: str
    deliveryId: str
    lastStatusCode: int | None
    lastError: str | None


class WebhookTest(Payload):
    """A test event (`POST /v1/endpoints/{id}/test`)."""

    endpointId: str
    message: str


def envelope(event_type: str, parameters: type[Payload]) -> type[BaseModel]:
    """The body a subscriber receives: `{"parameters": …, "type": "<event type>"}`."""
    name = "".join(part[:1].upper() + part[1:] for part in _words(event_type)) + "Event"
    model: type[BaseModel] = create_model(
        name,
        __config__=ConfigDict(extra="forbid"),
        __doc__=parameters.__doc__,
        parameters=(parameters, ...),
        type=(Literal[event_type], ...),  # type: ignore[arg-type]
    )
    return model


def _words(event_type: str) -> list[str]:
    return [w for w in event_type.replace("/", ".").replace("_", ".").split(".") if w]
