"""Where the credit for a period's unused part is taken from: every document that billed the
period — its open (or draft) billing information, and the invoices its billing information went
on, less what earlier credit notes took — newest first, never more than remains.

A second change in a period (or a cancellation after a change) used to take its credit from the
period's original invoice, most of which the first change had credited already: a 500. The
credit is now capped by what the period was billed for at the plan's VAT rate and still owes,
wherever that sits, so no sequence of changes, cancellations and credit notes can credit more
than was billed, or fail for want of it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.billing.pricing import Line
from app.invoicing.documents import Credit
from app.records import BillingRecord

ZERO = Decimal(0)
Params = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Billed:
    """One document that billed the period. Open: `record` and its `parameters`; invoiced: the
    invoice's number and, per line of this record at the rate, what remains to credit."""

    record: BillingRecord
    parameters: Params
    invoice: str | None = None
    lines: tuple[tuple[int, Decimal], ...] = ()  # invoiced: (line number, remaining)

    def remaining(self, rate: Decimal) -> Decimal:
        if self.invoice is not None:
            return sum((left for _, left in self.lines), ZERO)
        at_rate = sum(
            (
                Decimal(i["quantity"]) * Decimal(i["grossUnitPrice"])
                for i in self.parameters["invoice"]["items"]
                if Decimal(i["vatPercent"]) == rate
            ),
            ZERO,
        )
        return max(ZERO, min(at_rate, self.record.total_gross))


@dataclass(frozen=True, slots=True)
class Take:
    billed: Billed
    lines: list[Line]  # the negative lines this document takes (open billing information)
    credits: list[Credit]  # the credit-note items (invoiced)

    @property
    def amount(self) -> Decimal:
        return -sum((line.gross for line in self.lines), ZERO) + sum(
            (c.amount or ZERO for c in self.credits), ZERO
        )


def invoiced_lines(
    invoice: Params, earlier_notes: Sequence[Params], transaction_id: str, rate: Decimal
) -> tuple[tuple[int, Decimal], ...]:
    """The lines of `invoice` from billing information `transaction_id` at `rate` with what
    credit notes left of each (positive lines only: a discount is not credited back)."""
    credited: defaultdict[int, Decimal] = defaultdict(lambda: ZERO)
    for note in earlier_notes:
        for item in note["creditNote"]["items"]:
            credited[item["lineNumber"]] += Decimal(item["grossAmount"])
    found = []
    for line in invoice["invoice"]["items"]:
        gross = Decimal(line["grossAmount"])
        if line.get("transactionId") != transaction_id or gross <= 0:
            continue
        if Decimal(line["vatPercent"]) != rate:
            continue
        left = gross - credited[line["lineNumber"]]
        if left > 0:
            found.append((int(line["lineNumber"]), left))
    return tuple(found)


def allocate(credit: Sequence[Line], sources: Sequence[Billed]) -> list[Take]:
    """The credit's lines taken from `sources` (newest first), each up to what remains of it;
    what no source holds any more is not credited."""
    if not credit:
        return []
    rate = credit[0].vat_percent
    left = list(credit)
    takes = []
    for billed in sources:
        room = billed.remaining(rate)
        if room <= 0 or not left:
            continue
        taken, left = _split(left, room)
        if billed.invoice is None:
            takes.append(Take(billed, [_negated(line) for line in taken], []))
        else:
            takes.append(Take(billed, [], _credits(billed, sum((t.gross for t in taken), ZERO))))
    return takes


def _split(lines: list[Line], room: Decimal) -> tuple[list[Line], list[Line]]:
    """Lines worth at most `room` (the last one cut), and the rest."""
    taken: list[Line] = []
    rest = list(lines)
    while rest and room > 0:
        line = rest.pop(0)
        if line.gross <= room:
            taken.append(line)
            room -= line.gross
            continue
        taken.append(_worth(line, room))
        rest.insert(0, _worth(line, line.gross - room))
        room = ZERO
    return taken, rest


def _worth(line: Line, amount: Decimal) -> Line:
    return Line(line.product_id, line.description, Decimal(1), amount, line.vat_percent)


def _negated(line: Line) -> Line:
    return Line(
        line.product_id, f"Unused: {line.description}", Decimal(1), -line.gross, line.vat_percent
    )


def _credits(billed: Billed, amount: Decimal) -> list[Credit]:
    """By amount on the record's lines, the newest line first."""
    credits = []
    for number, left in sorted(billed.lines, reverse=True):
        if amount <= 0:
            break
        take = min(amount, left)
        credits.append(Credit(number, amount=take))
        amount -= take
    return credits
