"""Finalized invoices and credit notes as documents: pure functions from what was billed.

An invoice carries every line of the billing information it finalizes, in order. Its totals
follow the rounding contract over all its lines at once (docs/billing.md), so they can differ by
a cent from the sum of the preliminary totals; that difference is stated in the document, not
hidden. Each line's gross and net amounts are apportioned (largest remainder) so that the lines
add up exactly to their VAT group, which the e-invoice needs.

A credit note credits whole lines, parts of a line (a quantity or an amount), or everything that
remains; together the credit notes of an invoice never exceed it, and the one that credits the
last of it takes exactly the rest of each VAT group's net, so they sum to the invoice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from app.money import (
    DIVIDE,
    HUNDRED,
    ZERO,
    Totals,
    VatGroup,
    apportion,
    line_gross,
    net_of,
    round_half_up,
    totals,
)

INVOICE_EVENT = "invoices/invoiceFinalized"
CREDIT_NOTE_EVENT = "invoices/creditNoteCreated"
Params = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Source:
    """Open billing information about to be finalized, as it was notified."""

    id: str
    transaction_id: str
    event_id: str
    parameters: Params


@dataclass(frozen=True, slots=True)
class Head:
    """What the finalization decides: the number, the date, and who issues the invoice."""

    number: str
    issued: date
    seller: Params


class CreditRefused(ValueError):
    """A credit note that cannot be issued: `conflict` (409) when it would credit more than
    remains, else a bad request (422) about `field`."""

    def __init__(self, field: str, message: str, conflict: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.conflict = conflict


@dataclass(frozen=True, slots=True)
class Credit:
    """One requested credit note item: a line of the invoice, and a quantity or gross amount
    of it (neither: all that remains of the line)."""

    line: int
    quantity: Decimal | None = None
    amount: Decimal | None = None


# -- invoices -------------------------------------------------------------------------------


def numbers(value: Any, key: str = "") -> Any:
    """A stored document with every number a Decimal again (JSON writes 19.0 as 19, which
    reads back as an int), except line numbers."""
    if isinstance(value, dict):
        return {k: numbers(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers(v, key) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and key != "lineNumber":
        return Decimal(value)
    return value


def invoice(head: Head, sources: Sequence[Source], places: int) -> Params:
    """The `invoices/invoiceFinalized` parameters (the stored, immutable document)."""
    sources = [Source(s.id, s.transaction_id, s.event_id, numbers(s.parameters)) for s in sources]
    latest = sources[-1].parameters
    lines = [(s, item) for s in sources for item in s.parameters["invoice"]["items"]]
    rows = [(i["quantity"], i["grossUnitPrice"], i["vatPercent"]) for _, i in lines]
    sums = totals(rows, places)
    amounts = line_amounts(rows, sums.groups, places)
    preliminary = _preliminary(sources)
    document = {
        "billToAddress": latest["invoice"]["billToAddress"],
        "billingEndDate": max(s.parameters["invoice"]["billingEndDate"] for s in sources),
        "billingStartDate": min(s.parameters["invoice"]["billingStartDate"] for s in sources),
        "currency": latest["invoice"]["currency"],
        "dueDate": _due(head.issued, sources).isoformat(),
        "invoiceDate": head.issued.isoformat(),
        "invoiceNumber": head.number,
        "items": [
            _line(n, source, item, amount)
            for n, ((source, item), amount) in enumerate(zip(lines, amounts, strict=True), 1)
        ],
        "orderReference": latest["orderReference"],
        "preliminary": preliminary,
        "roundingDifference": {
            "grossAmount": sums.gross - preliminary["totalGrossAmount"],
            "netAmount": sums.net - preliminary["totalNetAmount"],
        },
        "seller": head.seller,
        "shipToAddress": latest["invoice"]["shipToAddress"],
        **_totals(sums),
    }
    return {
        "customerNumber": latest["customerNumber"],
        "externalContractId": latest["externalContractId"],
        "invoice": document,
        "invoiceNumber": head.number,
    }


def line_amounts(
    rows: Sequence[tuple[Decimal, Decimal, Decimal]], groups: Sequence[VatGroup], places: int
) -> list[tuple[Decimal, Decimal]]:
    """(gross, net) per line, rounded so that each VAT group's lines add up to its gross and
    net exactly (largest remainder of the exact amounts)."""
    members: defaultdict[Decimal, list[int]] = defaultdict(list)
    for index, (_, _, rate) in enumerate(rows):
        members[rate.normalize()].append(index)
    result: list[tuple[Decimal, Decimal]] = [(ZERO, ZERO)] * len(rows)
    for group in groups:
        indices = members[group.vat_percent]
        exact = [line_gross(rows[i][0], rows[i][1]) for i in indices]
        divisor = DIVIDE.add(1, DIVIDE.divide(group.vat_percent, HUNDRED))
        grosses = apportion(group.gross, exact, places)
        nets = apportion(group.net, [DIVIDE.divide(g, divisor) for g in exact], places)
        for i, gross, net in zip(indices, grosses, nets, strict=True):
            result[i] = (gross, net)
    return result


def _line(number: int, source: Source, item: Params, amounts: tuple[Decimal, Decimal]) -> Params:
    return {
        "lineNumber": number,
        **item,
        "grossAmount": amounts[0],
        "netAmount": amounts[1],
        "transactionId": source.transaction_id,
    }


def _due(issued: date, sources: Sequence[Source]) -> date:
    """The longest payment term any of the preliminary documents promised, from today."""
    terms = [
        (date.fromisoformat(i["dueDate"]) - date.fromisoformat(i["invoiceDate"])).days
        for i in (s.parameters["invoice"] for s in sources)
    ]
    return issued + timedelta(days=max(0, *terms))


def _preliminary(sources: Sequence[Source]) -> Params:
    documents = [
        {
            "eventId": s.event_id,
            "invoiceReference": s.parameters["invoice"]["invoiceReference"],
            "totalGrossAmount": s.parameters["invoice"]["totalGrossAmount"],
            "totalNetAmount": s.parameters["invoice"]["totalNetAmount"],
            "transactionId": s.transaction_id,
        }
        for s in sources
    ]
    return {
        "billingInformation": documents,
        "totalGrossAmount": sum((d["totalGrossAmount"] for d in documents), ZERO),
        "totalNetAmount": sum((d["totalNetAmount"] for d in documents), ZERO),
    }


def _totals(sums: Totals) -> Params:
    return {
        "totalGrossAmount": sums.gross,
        "totalNetAmount": sums.net,
        "totalVatAmount": sums.vat,
        "vatBreakdown": [
            {
                "grossAmount": g.gross,
                "netAmount": g.net,
                "vatAmount": g.vat,
                "vatPercent": g.vat_percent,
            }
            for g in sums.groups
        ],
    }


# -- credit notes -----------------------------------------------------------------------------


def credit_note(
    head: Head,
    invoice_: Params,
    previous: Sequence[Params],
    credits: Sequence[Credit] | None,
    reason: str,
    places: int,
) -> Params:
    """The `invoices/creditNoteCreated` parameters, or CreditRefused."""
    invoice_, previous = numbers(invoice_), [numbers(p) for p in previous]
    document = invoice_["invoice"]
    lines = {line["lineNumber"]: line for line in document["items"]}
    before = _credited_per_line(previous)
    chosen = _chosen(lines, before, credits, places)
    credited = sum((p["creditNote"]["totalGrossAmount"] for p in previous), ZERO)
    if credits is None and (not chosen or credited >= document["totalGrossAmount"]):
        raise CreditRefused("items", "the invoice is credited in full already", conflict=True)
    total = sum((amount for _, amount, _ in chosen), ZERO)
    if total <= 0:
        raise CreditRefused("items", "a credit note must reduce what the customer owes")
    if credited + total > document["totalGrossAmount"]:
        left = document["totalGrossAmount"] - credited
        raise CreditRefused("items", f"only {left} of the invoice remains to credit", True)
    after = dict(before)
    for n, amount, _ in chosen:
        after[n] = after.get(n, ZERO) + amount
    closing = all(after.get(n, ZERO) == line["grossAmount"] for n, line in lines.items())
    groups = _credit_groups(chosen, document, previous, closing, places)
    rows = [(Decimal(1), amount, lines[n]["vatPercent"]) for n, amount, _ in chosen]
    amounts = line_amounts(rows, groups, places)
    sums = Totals(sum((g.gross for g in groups), ZERO), sum((g.net for g in groups), ZERO), groups)
    items = [
        _credit_line(lines[n], amount, quantity, net)
        for (n, amount, quantity), (_, net) in zip(chosen, amounts, strict=True)
    ]
    note = {
        "billToAddress": document["billToAddress"],
        "creditNoteDate": head.issued.isoformat(),
        "creditNoteNumber": head.number,
        "currency": document["currency"],
        "invoiceNumber": document["invoiceNumber"],
        "items": items,
        "reason": reason,
        "seller": head.seller,
        **_totals(sums),
    }
    return {
        "creditNote": note,
        "creditNoteNumber": head.number,
        "customerNumber": invoice_["customerNumber"],
        "externalContractId": invoice_["externalContractId"],
        "invoiceNumber": document["invoiceNumber"],
    }


def _credited_per_line(previous: Sequence[Params]) -> dict[int, Decimal]:
    before: defaultdict[int, Decimal] = defaultdict(lambda: ZERO)
    for note in previous:
        for item in note["creditNote"]["items"]:
            before[item["lineNumber"]] += item["grossAmount"]
    return before


def _chosen(
    lines: dict[int, Params],
    before: dict[int, Decimal],
    credits: Sequence[Credit] | None,
    places: int,
) -> list[tuple[int, Decimal, Decimal | None]]:
    """(line, gross amount credited, quantity credited if by quantity) per item."""
    if credits is None:  # full cancellation: whatever remains of every line
        left = ((n, line["grossAmount"] - before.get(n, ZERO)) for n, line in lines.items())
        return [(n, amount, None) for n, amount in left if amount != 0]
    chosen: list[tuple[int, Decimal, Decimal | None]] = []
    for index, credit in enumerate(credits):
        where = f"items.{index}"
        line = lines.get(credit.line)
        if line is None:
            raise CreditRefused(f"{where}.line", f"the invoice has no line {credit.line}")
        if any(n == credit.line for n, _, _ in chosen):
            raise CreditRefused(f"{where}.line", f"line {credit.line} is named twice")
        amount = _amount(line, before.get(credit.line, ZERO), credit, where, places)
        chosen.append((credit.line, amount, credit.quantity))
    return chosen


def _amount(line: Params, before: Decimal, credit: Credit, where: str, places: int) -> Decimal:
    gross: Decimal = line["grossAmount"]
    sign = Decimal(-1) if gross < 0 else Decimal(1)
    if credit.quantity is not None and credit.amount is not None:
        raise CreditRefused(where, "give a quantity or an amount, not both")
    if credit.quantity is not None:
        if credit.quantity > line["quantity"]:
            raise CreditRefused(f"{where}.quantity", f"the line has {line['quantity']} units")
        full = credit.quantity == line["quantity"]
        amount = gross if full else round_half_up(credit.quantity * line["grossUnitPrice"], places)
    elif credit.amount is not None:
        amount = sign * credit.amount
    else:
        amount = gross - before
    if abs(before + amount) > abs(gross):
        left = abs(gross - before)
        message = f"line {line['lineNumber']}: only {left} remains to credit"
        raise CreditRefused(where, message, conflict=True)
    return amount


def _credit_groups(
    chosen: Sequence[tuple[int, Decimal, Decimal | None]],
    document: Params,
    previous: Sequence[Params],
    closing: bool,
    places: int,
) -> tuple[VatGroup, ...]:
    """VAT groups of the credit note; the closing one takes exactly each group's rest."""
    rate_of = {line["lineNumber"]: line["vatPercent"] for line in document["items"]}
    gross: defaultdict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    for n, amount, _ in chosen:
        gross[rate_of[n].normalize()] += amount
    rest: dict[Decimal, Decimal] = {}
    if closing:
        for g in document["vatBreakdown"]:
            rest[g["vatPercent"].normalize()] = g["netAmount"]
        for note in previous:
            for g in note["creditNote"]["vatBreakdown"]:
                rest[g["vatPercent"].normalize()] -= g["netAmount"]
    return tuple(
        VatGroup(rate, gross[rate], rest[rate] if closing else net_of(gross[rate], rate, places))
        for rate in sorted(gross)
    )


def _credit_line(line: Params, amount: Decimal, quantity: Decimal | None, net: Decimal) -> Params:
    whole = quantity is None and amount == line["grossAmount"]
    return {
        "lineNumber": line["lineNumber"],
        "description": line["description"],
        "grossUnitPrice": line["grossUnitPrice"] if quantity or whole else amount,
        "quantity": quantity or (line["quantity"] if whole else Decimal(1)),
        "vatPercent": line["vatPercent"],
        "productID": line["productID"],
        "grossAmount": amount,
        "netAmount": net,
    }
