"""A small, independent model of what a customer owes under billhook's billing rules
(docs/billing.md): subscriptions billed per period (in advance or in arrears, a stub to the
anchor, one-off items once), changes and cancellations with proration (credit at most what the
period still owes), one-off charges, credit notes, rebills and discarded drafts. Plain Decimal
arithmetic and dateutil, nothing of the hub's code: the stateful test compares the two."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta

CENT = Decimal("0.01")


def prorate(amount: Decimal, days: int, full_days: int) -> Decimal:
    return (amount * days / full_days).quantize(CENT, rounding=ROUND_HALF_UP)


def boundary(anchor: date, n: int) -> date:
    return anchor + relativedelta(months=n)


def period(anchor: date, start: date) -> tuple[date, date, int]:
    """(start, end, days of the full period it is part of): from `start` to the next boundary
    aligned with the anchor."""
    n = 0
    while boundary(anchor, n) > start:
        n -= 1
    while boundary(anchor, n + 1) <= start:
        n += 1
    return start, boundary(anchor, n + 1), (boundary(anchor, n + 1) - boundary(anchor, n)).days


@dataclass
class Change:
    id: str
    kind: str  # change | cancel
    day: date
    proration: str
    fee: Decimal | None  # the new plan's fee (a change)


@dataclass
class Sub:
    id: str
    fee: Decimal
    anchor: date
    start: date
    in_arrears: bool
    one_off: Decimal | None
    next_start: date  # the first period not billed yet
    status: str = "active"
    cycles: int = 0
    one_off_billed: bool = False
    periods: dict[date, list[object]] = field(default_factory=dict)  # start → [end, remaining]
    queued: list[Change] = field(default_factory=list)

    def containing(self, day: date) -> tuple[date, date, int]:
        """The period `day` falls in (the first one from the start)."""
        first = period(self.anchor, self.start)
        if day < first[1]:
            return first
        n = 0
        while boundary(self.anchor, n) > day:
            n -= 1
        while boundary(self.anchor, n + 1) <= day:
            n += 1
        return period(self.anchor, boundary(self.anchor, n))


class Model:
    def __init__(self) -> None:
        self.owed = Decimal(0)
        self.subs: dict[str, Sub] = {}
        self.today = date.min

    # -- what happens as days pass ------------------------------------------------------------

    def run_until(self, today: date) -> None:
        """Everything due up to `today`, in the order of the days it is due."""
        self.today = today
        while True:
            due = self._next_due(today)
            if due is None:
                return
            due()

    def _next_due(self, today: date):  # type: ignore[no-untyped-def]
        best = None
        for sub in self.subs.values():
            if sub.status != "active":
                continue
            end = sub.containing(sub.next_start)[1]
            cycle_day = end if sub.in_arrears else sub.next_start
            for change in sorted(sub.queued, key=lambda c: c.day):
                if change.day <= today:
                    # In advance a change on the period's start goes first (it prices it);
                    # in arrears the period ending that day is billed first (the old plan's).
                    first = change.day < cycle_day or (
                        change.day == cycle_day and not sub.in_arrears
                    )
                    key = (change.day, 0 if first else 2)
                    if best is None or key < best[0]:
                        best = (key, lambda s=sub, c=change: self._apply(s, c))
                    break
            if cycle_day <= today:
                key = (cycle_day, 1)
                if best is None or key < best[0]:
                    best = (key, lambda s=sub: self._cycle(s))
        return None if best is None else best[1]

    def _cycle(self, sub: Sub) -> None:
        start, end, full = sub.containing(sub.next_start)
        start = sub.next_start
        amount = prorate(sub.fee, (end - start).days, full)
        self._bill(sub, start, end, amount)
        sub.next_start = end

    def _bill(self, sub: Sub, start: date, end: date, amount: Decimal) -> None:
        if sub.one_off is not None and not sub.one_off_billed:
            amount += sub.one_off
            sub.one_off_billed = True
        sub.periods[start] = [end, amount]
        sub.cycles += 1
        self.owed += amount

    def _apply(self, sub: Sub, change: Change) -> None:
        sub.queued.remove(change)
        day = change.day
        if sub.in_arrears:
            self._apply_in_arrears(sub, change, day)
        else:
            self._apply_in_advance(sub, change, day)

    def _apply_in_advance(self, sub: Sub, change: Change, day: date) -> None:
        if day < sub.next_start and change.proration != "none":
            billed = max(s for s in sub.periods if s <= day)
            remaining = sub.periods[billed][1]
            _, period_end, full = sub.containing(day)
            rest = (period_end - day).days
            credit = min(prorate(sub.fee, rest, full), remaining)  # type: ignore[type-var]
            charge = prorate(change.fee, rest, full) if change.fee is not None else Decimal(0)
            sub.periods[billed][1] = remaining + charge - credit  # type: ignore[operator]
            self.owed += charge - credit
        self._switch(sub, change)

    def _apply_in_arrears(self, sub: Sub, change: Change, day: date) -> None:
        start = sub.next_start
        if day > start and (change.proration != "none" or change.kind == "cancel"):
            _, _, full = sub.containing(start)
            self._bill(sub, start, day, prorate(sub.fee, (day - start).days, full))
            sub.next_start = day
        self._switch(sub, change)

    def _switch(self, sub: Sub, change: Change) -> None:
        if change.kind == "cancel":
            sub.status = "cancelled"
            sub.queued.clear()  # what was queued after it lapses
        else:
            assert change.fee is not None
            sub.fee = change.fee

    # -- what the customer does ---------------------------------------------------------------

    def subscribe(self, sub: Sub) -> None:
        self.subs[sub.id] = sub
        if not sub.in_arrears:
            self._cycle(sub)

    def effective_day(self, sub: Sub, effective: str, offset: int) -> date:
        if effective == "now":
            return self.today
        if effective == "date":
            return self.today + relativedelta(days=offset)
        return sub.containing(self.today)[1]

    def queue(self, sub: Sub, change: Change) -> None:
        sub.queued.append(change)
        self.run_until(self.today)

    def taken(self, sub_id: str | None, billing_start: date | None, amount: Decimal) -> None:
        """A credit note, a rebill or a discard took `amount` from what was billed (a period
        of a subscription, when `sub_id` names one)."""
        self.owed -= amount
        sub = self.subs.get(sub_id or "")
        if sub is None or billing_start is None:
            return
        start = max((s for s in sub.periods if s <= billing_start), default=None)
        if start is not None:
            sub.periods[start][1] -= amount  # type: ignore[operator]
