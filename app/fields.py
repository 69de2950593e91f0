"""Field types and base classes shared by every request and answer model (app/models.py,
app/billing/models.py, app/invoicing/models.py): one rule each for strings, exact money numbers,
dates, and unknown fields.

Numbers are what JSON gave us (jsoncodec: Decimal or int), never floats: a quoted "11.99" or a
boolean is a client bug, not an amount. Every amount stays within what a receiver parsing JSON
numbers as doubles keeps exactly (money.SIGNIFICANT_DIGITS), the bound the API documents.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app import vat
from app.money import SIGNIFICANT_DIGITS, decimals, plain

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
    if decimals(value) > MAX_DECIMALS:
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


def not_before(earlier: str) -> Any:
    """A field validator: this date must not precede the (earlier-declared) field `earlier`."""

    def check(cls: type, value: date | None, info: ValidationInfo) -> date | None:
        other = info.data.get(earlier)
        if value is not None and other is not None and value < other:
            raise ValueError(f"must not be before {earlier}")
        return value

    return classmethod(check)


# What XML 1.0 cannot carry (its Char production; lone surrogates never pass jsoncodec): text
# billhook keeps may end in an e-invoice or a PDF, and PostgreSQL's text refuses NUL.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """Text every document and store can carry, or a ValueError naming the character."""
    found = _NOT_XML.search(value)
    if found is not None:
        raise ValueError(
            f"must not contain U+{ord(found.group()):04X} (a control or non-character XML "
            "1.0 cannot carry, so no invoice could show it)"
        )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _iso_date(value: Any) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be a date written YYYY-MM-DD") from exc


def _number_schema(**bounds: float) -> WithJsonSchema:
    """What /openapi.json says of a number field: the bounds the validators above enforce."""
    limit = float(MAX_AMOUNT)
    return WithJsonSchema(
        {
            "type": "number",
            "exclusiveMinimum": -limit,
            "exclusiveMaximum": limit,
            **bounds,
            "description": f"a JSON number, at most {MAX_DECIMALS} decimals and "
            f"{SIGNIFICANT_DIGITS} significant digits",
        }
    )


Number = Annotated[Decimal, BeforeValidator(_number), AfterValidator(_exact), _number_schema()]
Amount = Number  # may be negative: a discount line (the seed has −4.00)
Positive = Annotated[Number, AfterValidator(_positive), _number_schema(exclusiveMinimum=0)]
Quantity = Positive
NonNegative = Annotated[Number, AfterValidator(_not_negative), _number_schema(minimum=0)]
Usage = NonNegative
VatPercent = Annotated[Number, AfterValidator(_percent), _number_schema(minimum=0, maximum=100)]
Day = Annotated[
    date,
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}),
]
Name = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=255), AfterValidator(_not_blank)
]
Description = Annotated[str, StringConstraints(strict=True, max_length=1000)]
LongText = Annotated[str, StringConstraints(strict=True, max_length=2000)]
CurrencyCode = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")]
Variable = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]


class Input(BaseModel):
    """Requests reject unknown fields (a typo must not silently subscribe to everything), and
    every text field holds only what XML and the stores carry (422 naming the field)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _carried_everywhere(cls, value: Any) -> Any:
        if isinstance(value, str):
            xml_text(value)
        elif isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, str):
                    xml_text(item)
        return value


class Output(BaseModel):
    """Answers have exactly their declared fields (tests validate them against the models)."""

    model_config = ConfigDict(extra="forbid")


VatCategory = Literal["S", "Z", "E", "AE", "K", "G"]
ExemptionCode = Annotated[str, StringConstraints(strict=True, pattern=r"^VATEX-[A-Z0-9-]{1,40}$")]


class PricedItem(Input):
    """A line with its price as given: billing takes it in charges and completions, invoicing
    in rebills. The VAT category (app/vat.py) defaults to S above 0 % and Z at 0 %."""

    productID: Name
    description: Name
    quantity: Quantity
    grossUnitPrice: Amount
    vatPercent: VatPercent
    vatCategory: VatCategory | None = None
    vatExemptionReason: Name | None = None
    vatExemptionReasonCode: ExemptionCode | None = None

    @model_validator(mode="after")
    def _category_fits(self) -> PricedItem:
        found = vat.problem(
            self.vatPercent, self.vatCategory, self.vatExemptionReason, self.vatExemptionReasonCode
        )
        if found:
            raise ValueError(found)
        return self
