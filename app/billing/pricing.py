"""Price models applied to usage, and proration of recurring fees. Pure functions, Decimal only.

Every component becomes one line. Per-unit and volume components keep their unit price (the
line is usage × price, rounded only in the bill's total); tiered and package components are one
line whose price is the component's amount, rounded half-up to minor units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, Decimal

from dateutil.relativedelta import relativedelta

from app.billing.models import Flat, Package, PerUnit, PriceModelSpec, Tier, Tiered, Volume
from app.money import DIVIDE, EXACT, exact_sum, line_gross, plain, round_half_up

ONE = Decimal(1)
ZERO = Decimal(0)


class UsageError(ValueError):
    """Usage that does not fit the price model; `variable` names the offending key."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(message)
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Line:
    product_id: str
    description: str
    quantity: Decimal
    gross_unit_price: Decimal
    vat_percent: Decimal
    vat: tuple[str, str | None, str | None] | None = None  # (category, reason, code) if given

    @property
    def gross(self) -> Decimal:
        return line_gross(self.quantity, self.gross_unit_price)


def text(value: Decimal) -> str:
    """42, 12.5, 0.25 — a number as people write it in a description."""
    return plain(value.normalize())


def arguments(
    model: PriceModelSpec, variables: Mapping[str, Decimal | Mapping[str, Decimal]]
) -> dict[str, Decimal]:
    """A bill's `variables` as usage by variable. Seed 001's shape names each price function
    (a component's `id`, else its variable) with an object of its arguments; the flat map
    `{"minutes": 42}` is usage by variable already. One request uses one shape."""
    nested = [k for k, v in variables.items() if isinstance(v, Mapping)]
    if not nested:
        return {k: v for k, v in variables.items() if not isinstance(v, Mapping)}
    if len(nested) != len(variables):
        flat = next(k for k in variables if k not in nested)
        raise UsageError(flat, "use one shape: every value an object of arguments, or a number")
    functions: dict[str, Flat | PerUnit | Tiered | Volume | Package] = {}
    for c in model.components:
        function_id = c.id if isinstance(c, Flat) else c.id or c.variable
        if function_id:
            functions[function_id] = c
    usage: dict[str, Decimal] = {}
    for name, given in variables.items():
        component = functions.get(name)
        if component is None:
            raise UsageError(name, f"the price model has no price function {name!r}")
        assert isinstance(given, Mapping)
        expected = set() if isinstance(component, Flat) else {component.variable}
        for argument in set(given) - expected:
            raise UsageError(f"{name}.{argument}", f"{name!r} takes no argument {argument!r}")
        usage |= given
    return usage


def rate(
    model: PriceModelSpec, usage: Mapping[str, Decimal], product_id: str, places: int
) -> list[Line]:
    """One line per component, then a minimum or maximum adjustment if the model has one."""
    known = {c.variable for c in model.components if not isinstance(c, Flat)}
    for variable in usage:
        if variable not in known:
            raise UsageError(variable, f"the price model has no component for {variable!r}")
    lines = [_component(c, usage, product_id, model.vatPercent, places) for c in model.components]
    return lines + _bounds(model, lines, product_id, places)


def _component(
    component: Flat | PerUnit | Tiered | Volume | Package,
    usage: Mapping[str, Decimal],
    product_id: str,
    vat: Decimal,
    places: int,
) -> Line:
    product = component.productId or product_id
    if isinstance(component, Flat):
        return Line(product, component.name, ONE, component.amount, vat)
    if component.variable not in usage:
        raise UsageError(component.variable, f"usage {component.variable!r} is required")
    used = usage[component.variable]
    billable = max(ZERO, used - component.included)
    label = f"{component.name} {text(used)} {component.unit}".rstrip()
    if component.included:
        label += f" ({text(component.included)} {component.unit} included)".replace("  ", " ")
    if isinstance(component, PerUnit):
        return Line(product, label, billable, component.unitPrice, vat)
    if isinstance(component, Volume):
        return Line(product, label, billable, _volume_price(component.tiers, billable), vat)
    if isinstance(component, Tiered):
        amount = round_half_up(_graduated(component.tiers, billable), places)
        return Line(product, label, ONE, amount, vat)
    blocks = (billable / component.packageSize).to_integral_value(rounding=ROUND_CEILING)
    label += f", {text(blocks)} × {text(component.packageSize)}"
    return Line(product, label, blocks, component.packagePrice, vat)


def _graduated(tiers: list[Tier], units: Decimal) -> Decimal:
    amount, floor = ZERO, ZERO
    for tier in tiers:
        ceiling = units if tier.upTo is None else min(units, tier.upTo)
        if ceiling > floor:
            amount = EXACT.add(amount, line_gross(EXACT.subtract(ceiling, floor), tier.unitPrice))
        if tier.upTo is None or units <= tier.upTo:
            break
        floor = tier.upTo
    return amount


def _volume_price(tiers: list[Tier], units: Decimal) -> Decimal:
    for tier in tiers:
        if tier.upTo is None or units <= tier.upTo:
            return tier.unitPrice
    raise AssertionError("validated tiers end with an unbounded one")


def _bounds(model: PriceModelSpec, lines: list[Line], product_id: str, places: int) -> list[Line]:
    """The adjustment is taken from the subtotal as it will be billed (rounded), so the bill
    comes to exactly the minimum or maximum, and a cap that changes nothing adds no line."""
    subtotal = round_half_up(exact_sum(line.gross for line in lines), places)
    if model.minimum is not None and subtotal < model.minimum:
        name, adjust = "Minimum charge", model.minimum - subtotal
    elif model.maximum is not None and subtotal > model.maximum:
        name, adjust = "Maximum charge cap", model.maximum - subtotal
    else:
        return []
    return [Line(product_id, name, ONE, adjust, model.vatPercent)]


# -- recurring fees ---------------------------------------------------------------------------


def step(interval: str) -> relativedelta:
    return relativedelta(months=1) if interval == "month" else relativedelta(years=1)


def nth_boundary(anchor: date, interval: str, n: int) -> date:
    """anchor + n intervals, computed from the anchor so Jan 31 stays the 31st where it can."""
    months = n if interval == "month" else 12 * n
    return anchor + relativedelta(months=months)


def prorate(amount: Decimal, days: int, full_days: int, places: int) -> Decimal:
    """`amount` for `days` of a `full_days` period, rounded half-up to minor units.

    The seed's example: $30/month from 2024-04-16 to the anchor 2024-05-01 is 15 of the 30 days
    of the month ending at the anchor, so $15.00.
    """
    if not 0 < days <= full_days:
        raise ValueError(f"{days} days is not a part of a {full_days}-day period")
    return round_half_up(
        DIVIDE.divide(EXACT.multiply(amount, Decimal(days)), Decimal(full_days)), places
    )
