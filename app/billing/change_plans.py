"""What applying a subscription change or cancellation on a date bills: pure functions of the
subscription's state, the two price models and the date.

A date inside a period already billed (in advance: the current one) gives proration: what is
unused of the old plan from that date to the period's end is credited, and for a change the
new plan is charged for the same days, both at days ÷ the full period's days, half-up to minor
units. A date inside the period not yet billed of a subscription billed in arrears bills the
old plan's used part now and starts the next period on that date. A date on the next period's
start swaps the plan with nothing to prorate. A date beyond it waits until that period is
billed (the cycle goes first).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from app.billing.models import PriceModelSpec
from app.billing.periods import ONE_DAY, Cycle, containing, cycle
from app.billing.pricing import Line
from app.records import Subscription

# (subscription, its price model, part of a period) → the lines of that part
PeriodLines = Callable[[Subscription, PriceModelSpec, Cycle], list[Line]]


@dataclass(frozen=True, slots=True)
class Plan:
    after: Subscription
    credit: list[Line]  # what is unused of the old plan, as the positive amounts it was billed
    charge: list[Line]  # the new plan's rest, the used part (in arrears), a termination fee
    charged: tuple[date, date] | None  # the billing period of `charge` (inclusive)
    cycle_start: date | None  # in arrears: the charge is the cycle of this period start
    billed_period: date | None  # the billed period the credit is taken from


def plan(
    sub: Subscription,
    kind: str,
    spec: dict[str, Any],
    day: date,
    old: PriceModelSpec,
    new: PriceModelSpec | None,
    lines: PeriodLines,
    now: int,
) -> Plan | None:
    """The effects of the change on `day`, or None while the cycle before it is unbilled."""
    terms = sub.terms
    assert sub.next_period_start is not None
    upcoming = date.fromisoformat(sub.next_period_start)
    after = _after(sub, kind, spec, day, now)
    prorate = spec["proration"] != "none"
    fee = _fee(sub, kind, spec, day, old)
    if day >= upcoming:
        unbilled = cycle(terms, upcoming)
        if not terms["in_arrears"] or day >= unbilled.end:
            if day > upcoming:
                return None
            return Plan(after, [], fee, _days(day, day) if fee else None, None, None)
        if day == upcoming or not (prorate or kind == "cancel"):
            return Plan(after, [], fee, _days(day, day) if fee else None, None, None)
        used = Cycle(upcoming, day, (day - upcoming).days, unbilled.full_days)
        # The used part is that period's cycle: counted, so its one-off items are not billed
        # again by the next one.
        moved = dataclasses.replace(after, cycles_billed=sub.cycles_billed + 1)
        if kind != "cancel":
            moved = dataclasses.replace(moved, next_period_start=day.isoformat())
        charge = lines(sub, old, used) + fee
        return Plan(moved, [], charge, _days(upcoming, day - ONE_DAY), upcoming, None)
    period = containing(terms, day)
    rest = Cycle(day, period.end, (period.end - day).days, period.full_days)
    if not prorate:
        return Plan(after, [], fee, _days(day, day) if fee else None, None, None)
    credit = lines(sub, old, rest)
    charge = fee if new is None else lines(after, new, rest) + fee
    return Plan(after, credit, charge, _days(day, period.end - ONE_DAY), None, period.start)


def _after(sub: Subscription, kind: str, spec: dict[str, Any], day: date, now: int) -> Subscription:
    if kind == "cancel":
        terms = {**sub.terms, "cancelled": {"on": day.isoformat(), "reason": spec.get("reason")}}
        return dataclasses.replace(
            sub,
            status="cancelled",
            next_period_start=None,
            next_bill_at=None,
            terms=terms,
            updated_at=now,
        )
    return dataclasses.replace(
        sub,
        price_model_id=spec["priceModelId"],
        price_model_version=spec["priceModelVersion"],
        terms={**sub.terms, "variables": spec["variables"]},
        updated_at=now,
    )


def _fee(
    sub: Subscription, kind: str, spec: dict[str, Any], day: date, old: PriceModelSpec
) -> list[Line]:
    """The early-termination fee: a cancellation effective before the contract's end."""
    end = sub.terms.get("contract_end")
    if kind != "cancel" or spec.get("waiveTerminationFee") or old.earlyTerminationFee is None:
        return []
    if end is None or day > date.fromisoformat(end):
        return []
    label = f"Early termination fee ({old.name}, contract until {end})"
    return [Line(sub.product_id, label, Decimal(1), old.earlyTerminationFee, old.vatPercent)]


def _days(first: date, last: date) -> tuple[date, date]:
    return first, max(first, last)


def gross(lines: list[Line]) -> Decimal:
    return sum((line.gross for line in lines), Decimal(0))


def negated(line: Line) -> Line:
    """A credited line: the same description, marked, at the negative amount."""
    return Line(
        line.product_id, f"Unused: {line.description}", Decimal(1), -line.gross, line.vat_percent
    )
