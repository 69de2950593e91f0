"""Billing periods of a subscription: aligned to its anchor (every boundary is the anchor plus
or minus whole intervals), a stub from the start to the first boundary counted against the
full period that ends there, the last one cut at the contract's end. An anchor more than a
period after the start is a stub plus full periods up to it (seed 001's proration, repeated).
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
    the contract's end; a stub counts against the full period it is part of."""
    anchor, interval = date.fromisoformat(terms["anchor"]), terms["interval"]
    n = _index(anchor, interval, start)
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
    """The billing period `day` falls in (the first one, a stub, included)."""
    first = cycle(terms, date.fromisoformat(terms["start"]))
    if day < first.end:
        return first
    anchor, interval = date.fromisoformat(terms["anchor"]), terms["interval"]
    return cycle(terms, nth_boundary(anchor, interval, _index(anchor, interval, day)))


def _index(anchor: date, interval: str, day: date) -> int:
    """n such that anchor + n intervals <= day < anchor + (n + 1) intervals (n may be < 0)."""
    n = 0
    while nth_boundary(anchor, interval, n) > day:
        n -= 1
    while nth_boundary(anchor, interval, n + 1) <= day:
        n += 1
    return n
