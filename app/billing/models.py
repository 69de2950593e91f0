"""Billing request shapes, in the seed's camelCase. Money is Decimal; dates are YYYY-MM-DD."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.fields import (
    Amount,
    CurrencyCode,
    Day,
    Input,
    LongText,
    Name,
    NonNegative,
    Output,
    PricedItem,
    Quantity,
    Usage,
    Variable,
    VatPercent,
    not_before,
)
from app.money import UnknownCurrency, decimals, minor_units


class Address(Input):
    countryCode: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{2}$")]
    postalCode: Name | None = None
    postalPlace: Name | None = None
    street: Name | None = None
    streetNumber: Annotated[str, StringConstraints(strict=True, max_length=32)] | None = None
    name: Name | None = None
    vatId: (
        Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{2}[A-Za-z0-9+*.]{2,13}$")]
        | None
    ) = Field(
        None,
        description="the buyer's VAT identifier (BT-48): reverse charge and intra-community "
        "supplies need it",
    )


class RatedItem(Input):
    productID: Name
    priceModelId: Name
    usage: dict[Variable, Usage] = Field(default_factory=dict, max_length=50)


def _item_kind(value: Any) -> str:
    return "rated" if isinstance(value, dict) and "priceModelId" in value else "priced"


Item = Annotated[
    Annotated[PricedItem, Tag("priced")] | Annotated[RatedItem, Tag("rated")],
    Discriminator(_item_kind),
]


class BillingFields(Input):
    """What every call that produces billing information may set (defaults: docs/billing.md)."""

    customerNumber: Name
    externalContractId: Name | None = None
    transactionId: Name | None = None
    orderReference: Name | None = None
    orderChannel: Name | None = None
    orderDate: Day | None = None
    invoiceDate: Day | None = None
    dueDate: Day | None = None
    invoiceReference: Name | None = None
    currency: CurrencyCode | None = None
    billingStartDate: Day | None = None
    billingEndDate: Day | None = None
    billToAddress: Address | None = None
    shipToAddress: Address | None = None

    _end_after_start = field_validator("billingEndDate")(not_before("billingStartDate"))
    _due_after_invoice = field_validator("dueDate")(not_before("invoiceDate"))


class UsageCompletion(BillingFields):
    """A finished usage (a trip, a charging session): priced or rated items."""

    externalContractId: Name
    transactionId: Name
    currency: CurrencyCode
    billingStartDate: Day
    billingEndDate: Day
    billToAddress: Address
    items: list[Item] = Field(min_length=1, max_length=1000)


class Charge(BillingFields):
    """A one-off fee, penalty, add-on or correction outside the usage cycle."""

    currency: CurrencyCode
    items: list[PricedItem] = Field(min_length=1, max_length=1000)
    memo: LongText | None = None
    reason: Literal["fee", "penalty", "add_on", "correction"] | None = None


# Seed 001: the arguments of one NamedPriceFunction, by argument name.
Arguments = Annotated[dict[Variable, Usage], Field(max_length=50)]


class OneOffLineItem(Input):
    productID: Name | None = None
    description: Name
    quantity: Quantity
    grossUnitPrice: Amount
    vatPercent: VatPercent


class Bill(BillingFields):
    """Bill against a price model or one-off line items (seed 001)."""

    productId: Name
    priceModelId: Name | None = None
    oneOffLineItems: list[OneOffLineItem] | None = Field(
        None, min_length=1, max_length=1000, validate_default=True
    )
    variables: dict[Variable, Usage | Arguments] = Field(
        default_factory=dict,
        max_length=50,
        description="The usage the price model is applied to: the seed's shape, one object of "
        "arguments per named price function (a component's `id`, else its variable), e.g. "
        '`{"driving": {"minutes": 42}}`, or the flat map `{"minutes": 42}`',
    )
    billingCycleAnchor: Day | None = None
    billInArrears: Annotated[bool, Field(strict=True)] = False
    contractStart: Day | None = None
    contractEnd: Day | None = None
    memo: LongText | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=50)
    draft: Annotated[bool, Field(strict=True)] = True

    _end_after_start_of_contract = field_validator("contractEnd")(not_before("contractStart"))

    @field_validator("oneOffLineItems")
    @classmethod
    def _something_to_bill(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.data.get("priceModelId") is None:
            raise ValueError("give priceModelId or oneOffLineItems (neither was given)")
        return value


# -- price models ---------------------------------------------------------------------------


class Tier(Input):
    upTo: NonNegative | None = None
    unitPrice: Amount


class _Component(Input):
    name: Name
    productId: Name | None = None
    id: Variable | None = Field(
        None, description="the named price function's id in a bill's `variables` (seed 001)"
    )


class Flat(_Component):
    type: Literal["flat"]
    amount: Amount


class _Metered(_Component):
    variable: Variable
    unit: Annotated[str, StringConstraints(strict=True, max_length=32)] = ""
    included: NonNegative = Decimal(0)


class PerUnit(_Metered):
    type: Literal["per_unit"]
    unitPrice: Amount


def _tiers_ascend(tiers: list[Tier]) -> list[Tier]:
    bounds = [t.upTo for t in tiers]
    if bounds[-1] is not None:
        raise ValueError("the last tier must have upTo: null (no upper bound)")
    if any(b is None for b in bounds[:-1]):
        raise ValueError("only the last tier may have upTo: null")
    finite = [b for b in bounds[:-1] if b is not None]
    if any(a >= b for a, b in itertools.pairwise(finite)):
        raise ValueError("tier bounds must increase")
    return tiers


Tiers = Annotated[list[Tier], Field(min_length=1, max_length=50), AfterValidator(_tiers_ascend)]


class Tiered(_Metered):
    """Graduated: each tier's units at that tier's price."""

    type: Literal["tiered"]
    tiers: Tiers


class Volume(_Metered):
    """All units at the price of the tier the total falls in."""

    type: Literal["volume"]
    tiers: Tiers


class Package(_Metered):
    """Per started block of `packageSize` units."""

    type: Literal["package"]
    packageSize: Quantity
    packagePrice: Amount


Component = Annotated[Flat | PerUnit | Tiered | Volume | Package, Field(discriminator="type")]


class PriceModelSpec(Input):
    name: Name
    currency: CurrencyCode
    vatPercent: VatPercent
    components: list[Component] = Field(default_factory=list, max_length=50)
    minimum: NonNegative | None = None
    maximum: NonNegative | None = None
    interval: Literal["month", "year"] | None = None
    fee: NonNegative | None = Field(None, validate_default=True)
    earlyTerminationFee: NonNegative | None = Field(
        None,
        description="charged when a subscription on this model is cancelled with effect "
        "before its contractEnd (unless the cancellation waives it)",
    )
    description: LongText | None = None

    @field_validator("components")
    @classmethod
    def _one_price_per_variable(cls, value: list[Any]) -> list[Any]:
        variables = [c.variable for c in value if not isinstance(c, Flat)]
        if len(variables) != len(set(variables)):
            raise ValueError("each usage variable may be priced by one component only")
        return value

    @model_validator(mode="after")
    def _bill_amounts_in_minor_units(self) -> PriceModelSpec:
        """A minimum, maximum or fee is what a bill comes to: whole minor units."""
        try:
            places = minor_units(self.currency)
        except UnknownCurrency:
            return self  # the service names the currency field (price_models._check_currency)
        for name in ("minimum", "maximum", "fee", "earlyTerminationFee"):
            value = getattr(self, name)
            if value is not None and decimals(value) > places:
                raise ValueError(f"{name} must have at most {places} decimals ({self.currency})")
        return self

    @field_validator("maximum")
    @classmethod
    def _maximum_above_minimum(cls, value: Any, info: ValidationInfo) -> Any:
        minimum = info.data.get("minimum")
        if value is not None and minimum is not None and value < minimum:
            raise ValueError("must not be below minimum")
        return value

    @field_validator("fee")
    @classmethod
    def _recurring(cls, value: Any, info: ValidationInfo) -> Any:
        if (info.data.get("interval") is None) != (value is None):
            raise ValueError("a recurring model needs both interval and fee")
        if value is None and not info.data.get("components"):
            raise ValueError("a model needs components or a recurring fee")
        return value


class PriceModelPatch(Input):
    name: Name | None = None
    currency: CurrencyCode | None = None
    vatPercent: VatPercent | None = None
    components: list[Component] | None = Field(None, max_length=50)
    minimum: NonNegative | None = None
    maximum: NonNegative | None = None
    interval: Literal["month", "year"] | None = None
    fee: NonNegative | None = None
    earlyTerminationFee: NonNegative | None = None
    description: LongText | None = None


# -- answers ----------------------------------------------------------------------------------


class BillingAccepted(Output):
    """The stored billing information: `billing_information` is the event's `parameters`."""

    event_id: str
    billing_information: dict[str, Any]


class SubscriptionOut(Output):
    id: str
    customerNumber: str
    externalContractId: str
    productId: str
    priceModelId: str
    priceModelVersion: int
    status: Literal["active", "ended", "cancelled"]
    anchor: str
    interval: Literal["month", "year"]
    billInArrears: bool
    nextPeriodStart: str | None
    nextBillAt: str | None
    cyclesBilled: int
    created_at: str


class BillAccepted(Output):
    event_id: str | None
    billing_information: dict[str, Any] | None
    subscription: SubscriptionOut | None
    invoice: dict[str, Any] | None = None  # `draft: false`: the finalized invoice


class PriceModelOut(PriceModelSpec):
    """A price model version (PATCH creates the next one)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    version: int
    created_at: str


class PriceModelPage(Output):
    data: list[PriceModelOut]
    next_cursor: str | None


class SubscriptionPage(Output):
    data: list[SubscriptionOut]
    next_cursor: str | None


# -- the lifecycle ----------------------------------------------------------------------------

BillingStatus = Literal["draft", "open", "invoiced", "discarded", "superseded"]


class Discard(Input):
    reason: Name


class Regenerate(Input):
    reason: Name = "regenerated"


class SettingsPatch(Input):
    autoFinalize: Annotated[bool, Field(strict=True)] | None = None
    autoFinalizeDrafts: Annotated[bool, Field(strict=True)] | None = None
    freeFormEventTypes: Annotated[bool, Field(strict=True)] | None = None


class SettingsOut(Output):
    """Automatic finalization after `finalizeAfter` (BILLHOOK_FINALIZE_AFTER; null: off for
    the whole hub): of open billing information when `autoFinalize`, of drafts too when
    `autoFinalizeDrafts`. `freeFormEventTypes`: `POST /v1/events` takes types that are neither
    built in nor declared (off for new tenants: such a type is a 422 with the closest names)."""

    autoFinalize: bool
    autoFinalizeDrafts: bool
    finalizeAfterSeconds: float | None
    freeFormEventTypes: bool


class BillingInformationOut(Output):
    transactionId: str
    status: BillingStatus
    statusReason: str | None
    supersededBy: str | None
    invoiceNumber: str | None
    source: str
    subscriptionId: str | None
    eventId: str
    created_at: str
    parameters: dict[str, Any]


class BillingInformationPage(Output):
    data: list[BillingInformationOut]
    next_cursor: str | None


Effective = Literal["now", "period_end", "date"]
Proration = Literal["prorate", "none", "invoice_now"]


class _Dated(Input):
    effective: Effective | None = None
    effectiveDate: Day | None = None

    @model_validator(mode="after")
    def _date_when_dated(self) -> _Dated:
        if (self.effective == "date") != (self.effectiveDate is not None):
            raise ValueError('effectiveDate goes with effective "date", and only with it')
        return self


class SubscriptionChange(_Dated):
    """Another price model, other variables, or both (Aria's assign/replace/update plan and
    unit instances). `effective` defaults to now for an upgrade and to the period end for a
    downgrade; `proration` is Stripe's: prorate (lines billed now), none, invoice_now."""

    priceModelId: Name | None = None
    variables: dict[Variable, Usage | Arguments] | None = Field(None, max_length=50)
    proration: Proration = "prorate"

    @model_validator(mode="after")
    def _something_to_change(self) -> SubscriptionChange:
        if self.priceModelId is None and self.variables is None:
            raise ValueError("give priceModelId, variables, or both")
        return self


class SubscriptionCancel(_Dated):
    """Cancel at the period end (default), now, or on a date; now and dated cancellations
    credit what is unused (unless proration is none) and charge the price model's
    earlyTerminationFee before the contract's end (unless waived)."""

    effective: Effective | None = "period_end"
    proration: Proration = "prorate"
    waiveTerminationFee: Annotated[bool, Field(strict=True)] = False
    reason: Name | None = None


class ChangeEdit(Input):
    """A queued change rescheduled or rewritten (what is not sent stays)."""

    effectiveDate: Day | None = None
    priceModelId: Name | None = None
    variables: dict[Variable, Usage | Arguments] | None = Field(None, max_length=50)
    proration: Proration | None = None


class ChangeOut(Output):
    id: str
    subscriptionId: str
    kind: Literal["change", "cancel"]
    status: Literal["queued", "applied", "cancelled", "failed"]
    effectiveDate: str
    request: dict[str, Any]
    result: dict[str, Any] | None
    created_at: str
    updated_at: str


class ChangeAnswer(Output):
    change: ChangeOut
    subscription: SubscriptionOut


class ChangePage(Output):
    data: list[ChangeOut]
    next_cursor: str | None
