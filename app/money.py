"""Money: Decimal only, ISO 4217 minor units, and the rounding contract of docs/billing.md.

The contract (German VAT guidance, UStAE 15.4, "divisor method"):
- total gross = Σ quantity × gross unit price, rounded half-up to the currency's minor units;
- lines are grouped by VAT rate; each group's gross is its share of that total (rounded, and
  allocated by largest remainder so the groups add up to the total exactly);
- each group's net = round_half_up(group gross / (1 + rate / 100)); its VAT = gross − net;
- total net = Σ group nets. Nothing is rounded per line before grouping.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

from iso4217 import Currency

# A receiver that parses JSON numbers as IEEE doubles keeps 15 significant digits exactly:
# every amount billhook accepts or writes stays within them.
SIGNIFICANT_DIGITS = 15
HUNDRED = Decimal(100)
ZERO = Decimal(0)
MAX_DECIMALS = 6
# Sums and products of amounts must be exact: 60 digits hold any bill we accept, and should one
# not fit, Inexact raises instead of rounding silently. Only the divisor method divides.
EXACT = Context(prec=60, traps=[Inexact, Overflow, InvalidOperation, DivisionByZero])
DIVIDE = Context(prec=60, traps=[Overflow, InvalidOperation, DivisionByZero])


# ISO 4217 marks these as funds ("IsFund"): units of account beside a currency (Bolivian
# Mvdol, WIR euro, Unidad de Fomento, …), not what customers are billed in. The iso4217 package
# does not carry the mark, and gives most of them minor units, so they are listed here.
FUNDS = frozenset({"BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW"})


class UnknownCurrency(ValueError):
    """Not an ISO 4217 currency with minor units (funds and metals are not billable)."""


def minor_units(currency: str) -> int:
    """EUR 2, JPY 0, KWD 3."""
    try:
        exponent = Currency(currency).exponent
    except ValueError as exc:
        raise UnknownCurrency(f"{currency!r} is not an ISO 4217 currency code") from exc
    if currency in FUNDS:
        raise UnknownCurrency(f"{currency} is an ISO 4217 fund code, not a billable currency")
    if exponent is None:
        raise UnknownCurrency(f"{currency} has no minor units (a metal or special unit)")
    return int(exponent)


def plain(value: Decimal) -> str:
    """The one way billhook writes a Decimal as text (JSON, XML, CLI, descriptions).

    Positional notation with the digits held: 2E+1 is "20", 1.50 stays "1.50", -0.00 is "0.00".
    Never an exponent: `str()` and `normalize()` produce "2E+1", which xs:decimal refuses and
    people misread. Numbers are bounded where JSON is read (jsoncodec), so this stays short.
    """
    if not value.is_finite():
        raise ValueError(f"{value} is not a number")
    return format(abs(value) if value.is_zero() else value, "f")


def quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def amount_limit(places: int) -> Decimal:
    """Totals and line amounts stay below this (10^13 for EUR): 15 significant digits."""
    return Decimal(10) ** (SIGNIFICANT_DIGITS - places)


def to_minor(amount: Decimal, places: int) -> int:
    """12.34 EUR → 1234. Refuses an amount finer than the minor unit instead of truncating it
    (int() would: 0.005 EUR would count as nothing credited)."""
    scaled = amount.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{plain(amount)} is finer than {places} decimals")
    return int(scaled)


def round_half_up(amount: Decimal, places: int) -> Decimal:
    """Commercial rounding: 0.005 → 0.01 and −0.005 → −0.01 (away from zero on a tie)."""
    return amount.quantize(quantum(places), rounding=ROUND_HALF_UP)


def decimals(value: Decimal) -> int:
    """Digits after the point the value needs, however it was written: 0.010 needs 2 (it is
    0.01), 1.50 needs 1, 20 and 2E+1 need none. Limits judge the value, not its spelling."""
    if not value.is_finite() or value.is_zero():
        return 0
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def net_of(gross: Decimal, vat_percent: Decimal, places: int) -> Decimal:
    """The divisor method: net = gross / (1 + rate/100), rounded half-up once."""
    divisor = DIVIDE.add(1, DIVIDE.divide(vat_percent, HUNDRED))
    return round_half_up(DIVIDE.divide(gross, divisor), places)


def allocate(total: Decimal, parts: Sequence[Decimal], places: int) -> list[Decimal]:
    """Round `parts` to `places` so that they add up to `total` exactly (largest remainder).

    Each part is floored to the minor unit; the units still missing go, one each, to the parts
    with the largest remainders (earlier parts first on a tie). `total` must be at `places`.
    """
    unit = quantum(places)
    floors = [p.quantize(unit, rounding=ROUND_FLOOR) for p in parts]
    missing = int((total - sum(floors, Decimal(0))) / unit)
    if not 0 <= missing <= len(parts):
        raise ValueError(f"{total} is not the rounded sum of {list(parts)}")
    order = sorted(range(len(parts)), key=lambda i: (-(parts[i] - floors[i]), i))
    for index in order[:missing]:
        floors[index] += unit
    return floors


def apportion(total: Decimal, parts: Sequence[Decimal], places: int) -> list[Decimal]:
    """Round `parts` to `places` so that they add up to `total` exactly, whatever the gap
    (line nets to their group's net, which is rounded from a rounded gross): the largest
    remainder method, handing out (or taking back) one minor unit per part in turn."""
    if not parts:
        return []
    unit = quantum(places)
    floors = [p.quantize(unit, rounding=ROUND_FLOOR) for p in parts]
    gap = int((total - sum(floors, ZERO)) / unit)
    by_remainder = sorted(range(len(parts)), key=lambda i: (-(parts[i] - floors[i]), i))
    order = by_remainder if gap >= 0 else by_remainder[::-1]
    step = unit if gap >= 0 else -unit
    for n in range(abs(gap)):
        floors[order[n % len(order)]] += step
    return floors


@dataclass(frozen=True, slots=True)
class VatGroup:
    vat_percent: Decimal
    gross: Decimal
    net: Decimal

    @property
    def vat(self) -> Decimal:
        return self.gross - self.net


@dataclass(frozen=True, slots=True)
class Totals:
    gross: Decimal
    net: Decimal
    groups: tuple[VatGroup, ...]

    @property
    def vat(self) -> Decimal:
        return self.gross - self.net


def line_gross(quantity: Decimal, gross_unit_price: Decimal) -> Decimal:
    return EXACT.multiply(quantity, gross_unit_price)


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for value in values:
        total = EXACT.add(total, value)
    return total


def totals(lines: Iterable[tuple[Decimal, Decimal, Decimal]], places: int) -> Totals:
    """Totals of (quantity, gross unit price, VAT percent) lines under the rounding contract."""
    exact: dict[Decimal, Decimal] = {}
    for quantity, price, rate in lines:
        key = rate.normalize()
        exact[key] = EXACT.add(exact.get(key, ZERO), line_gross(quantity, price))
    rates = sorted(exact)
    gross = round_half_up(exact_sum(exact.values()), places)
    shares = allocate(gross, [exact[r] for r in rates], places) if rates else []
    groups = tuple(
        VatGroup(rate, share, net_of(share, rate, places))
        for rate, share in zip(rates, shares, strict=True)
    )
    return Totals(gross, sum((g.net for g in groups), Decimal(0)).quantize(quantum(places)), groups)
