"""Billing periods of a subscription: aligned to its anchor, a stub before the first anchor
counted against the full period that ends there, the last one cut at the contract's end.
Pure functions of the subscription's terms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from app.billing.pricing import nth_boundary

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Cycle:
    start: date
    end: date  # exclusive
    days: int
    full_days: int

    @property
    def partial(self) -> bool:
        return self.days != self.full_days


def cycle(terms: dict[str, Any], start: date) -> Cycle:
    """The billing period that begins at `start`: up to the next anchor-aligned boundary, cut at
    the contract's end; a stub before the first anchor counts against the period ending there."""
    anchor, interval = date.fromisoformat(terms["anchor"]), terms["interval"]
    if start < anchor:
        end, full_start = anchor, nth_boundary(anchor, interval, -1)
    else:
        n = 0
        while nth_boundary(anchor, interval, n + 1) <= start:
            n += 1
        full_start, end = nth_boundary(anchor, interval, n), nth_boundary(anchor, interval, n + 1)
    full_days = (end - full_start).days
    if terms.get("contract_end"):
        end = min(end, date.fromisoformat(terms["contract_end"]) + ONE_DAY)
    return Cycle(start, end, (end - start).days, full_days)


def first_anchor(anchor: date, start: date, interval: str) -> date:
    """The first anchor-aligned boundary on or after the start: an anchor in the past still
    fixes the day of the month."""
    n = 0
    while nth_boundary(anchor, interval, n) < start:
        n += 1
    return nth_boundary(anchor, interval, n)


def containing(terms: dict[str, Any], day: date) -> Cycle:
    """The billing period `day` falls in (the stub before the first anchor included)."""
    anchor, interval = date.fromisoformat(terms["anchor"]), terms["interval"]
    if day < anchor:
        return cycle(terms, date.fromisoformat(terms["start"]))
    n = 0
    while nth_boundary(anchor, interval, n + 1) <= day:
        n += 1
    return cycle(terms, nth_boundary(anchor, interval, n))
