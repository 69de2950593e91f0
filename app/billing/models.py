"""Billing request shapes, in the seed's camelCase. Money is Decimal; dates are YYYY-MM-DD."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.money import SIGNIFICANT_DIGITS, UnknownCurrency, decimals, minor_units, plain

MAX_DECIMALS = 6
MAX_AMOUNT = Decimal("1e12")


def _number(value: Any) -> Any:
    """JSON numbers only: a quoted "11.99" or a boolean is a client bug, not an amount."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError("must be a JSON number")
    return Decimal(value) if isinstance(value, int) else value


def _exact(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        raise ValueError(f"must have at most {MAX_DECIMALS} decimals")
    if abs(value) >= MAX_AMOUNT:
        raise ValueError(f"must be below {plain(MAX_AMOUNT)} in magnitude")
    if len(value.normalize().as_tuple().digits) > SIGNIFICANT_DIGITS:
        raise ValueError(
            f"must have at most {SIGNIFICANT_DIGITS} significant digits (what a JSON reader "
            "parsing numbers as doubles keeps exactly)"
        )
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def _not_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _percent(value: Decimal) -> Decimal:
    if not 0 <= value <= 100:
        raise ValueError("must be between 0 and 100")
    return value


def _not_before(earlier: str) -> Any:
    """A field validator: this date must not precede the (earlier-declared) field `earlier`."""

    def check(cls: type, value: date | None, info: ValidationInfo) -> date | None:
        other = info.data.get(earlier)
        if value is not None and other is not None and value < other:
            raise ValueError(f"must not be before {earlier}")
        return value

    return classmethod(check)


def _iso_date(value: Any) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be a date written YYYY-MM-DD") from exc


Number = Annotated[Decimal, BeforeValidator(_number), AfterValidator(_exact)]
Amount = Number  # may be negative: a discount line (the seed has −4.00)
Quantity = Annotated[Number, AfterValidator(_positive)]
Usage = Annotated[Number, AfterValidator(_not_negative)]
NonNegative = Annotated[Number, AfterValidator(_not_negative)]
VatPercent = Annotated[Number, AfterValidator(_percent)]
Day = Annotated[date, BeforeValidator(_iso_date)]
Text = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]
LongText = Annotated[str, StringConstraints(strict=True, max_length=2000)]
CurrencyCode = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")]
Variable = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Address(Input):
    countryCode: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{2}$")]
    postalCode: Text | None = None
    postalPlace: Text | None = None
    street: Text | None = None
    streetNumber: Annotated[str, StringConstraints(strict=True, max_length=32)] | None = None
    name: Text | None = None


class PricedItem(Input):
    productID: Text
    description: Text
    quantity: Quantity
    grossUnitPrice: Amount
    vatPercent: VatPercent


class RatedItem(Input):
    productID: Text
    priceModelId: Text
    usage: dict[Variable, Usage] = Field(default_factory=dict, max_length=50)


def _item_kind(value: Any) -> str:
    return "rated" if isinstance(value, dict) and "priceModelId" in value else "priced"


Item = Annotated[
    Annotated[PricedItem, Tag("priced")] | Annotated[RatedItem, Tag("rated")],
    Discriminator(_item_kind),
]


class BillingFields(Input):
    """What every call that produces billing information may set (defaults: docs/billing.md)."""

    customerNumber: Text
    externalContractId: Text | None = None
    transactionId: Text | None = None
    orderReference: Text | None = None
    orderChannel: Text | None = None
    orderDate: Day | None = None
    invoiceDate: Day | None = None
    dueDate: Day | None = None
    invoiceReference: Text | None = None
    currency: CurrencyCode | None = None
    billingStartDate: Day | None = None
    billingEndDate: Day | None = None
    billToAddress: Address | None = None
    shipToAddress: Address | None = None

    _end_after_start = field_validator("billingEndDate")(_not_before("billingStartDate"))
    _due_after_invoice = field_validator("dueDate")(_not_before("invoiceDate"))


class UsageCompletion(BillingFields):
    """A finished usage (a trip, a charging session): priced or rated items."""

    externalContractId: Text
    transactionId: Text
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


class OneOffLineItem(Input):
    productID: Text | None = None
    description: Text
    quantity: Quantity
    grossUnitPrice: Amount
    vatPercent: VatPercent


class Bill(BillingFields):
    """Bill against a price model or one-off line items (seed 001)."""

    productId: Text
    priceModelId: Text | None = None
    oneOffLineItems: list[OneOffLineItem] | None = Field(
        None, min_length=1, max_length=1000, validate_default=True
    )
    variables: dict[Variable, Usage] = Field(default_factory=dict, max_length=50)
    billingCycleAnchor: Day | None = None
    billInArrears: Annotated[bool, Field(strict=True)] = False
    contractStart: Day | None = None
    contractEnd: Day | None = None
    memo: LongText | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=50)
    draft: Annotated[bool, Field(strict=True)] = True

    _end_after_start_of_contract = field_validator("contractEnd")(_not_before("contractStart"))

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
    name: Text
    productId: Text | None = None


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
    name: Text
    currency: CurrencyCode
    vatPercent: VatPercent
    components: list[Component] = Field(default_factory=list, max_length=50)
    minimum: NonNegative | None = None
    maximum: NonNegative | None = None
    interval: Literal["month", "year"] | None = None
    fee: NonNegative | None = Field(None, validate_default=True)
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
        for name in ("minimum", "maximum", "fee"):
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
    name: Text | None = None
    currency: CurrencyCode | None = None
    vatPercent: VatPercent | None = None
    components: list[Component] | None = Field(None, max_length=50)
    minimum: NonNegative | None = None
    maximum: NonNegative | None = None
    interval: Literal["month", "year"] | None = None
    fee: NonNegative | None = None
    description: LongText | None = None


# -- answers ----------------------------------------------------------------------------------


class Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    status: Literal["active", "ended"]
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
