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
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from app import jsoncodec, vat
from app.money import (
    DIVIDE,
    HUNDRED,
    ZERO,
    Totals,
    VatGroup,
    apportion,
    decimals,
    line_gross,
    net_of,
    round_half_up,
    totals,
)

VAT_KEYS = ("vatCategory", "vatExemptionReason", "vatExemptionReasonCode")  # when given
INVOICE_EVENT = "invoices/invoiceFinalized"
CREDIT_NOTE_EVENT = "invoices/creditNoteCreated"
Params = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Source:
    """Open billing information about to be finalized, as it was notified."""

    id: str
    transaction_id: str
    event_id: str | None  # None: the corrected lines of a rebill, which no event announced
    parameters: Params
    memo: str | None = None
    metadata: Params | None = None


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


@dataclass(frozen=True, slots=True)
class TaxGroup:
    """One VAT breakdown group by (category, rate): what an e-invoice's BG-23 and a PDF's
    breakdown list. Only 0 % has several categories, so no VAT is rounded anew."""

    category: str
    rate: Decimal
    net: Decimal
    vat: Decimal
    reason: str | None
    code: str | None


def tax_groups(document: Params) -> list[TaxGroup]:
    """The document's groups by rate, its 0 % group split by category (each part is its
    lines' net), each exempt category with the reason the invoice states (BT-120/121)."""
    groups = []
    for group in document["vatBreakdown"]:
        rate = group["vatPercent"]
        if rate:
            groups.append(TaxGroup("S", rate, group["netAmount"], group["vatAmount"], None, None))
            continue
        parts: dict[str, list[Params]] = {}
        for line in document["items"]:
            if line["vatPercent"] == rate:
                parts.setdefault(vat.category(rate, line.get("vatCategory")), []).append(line)
        for category, lines in parts.items():
            given = next((line for line in lines if line.get("vatExemptionReason")
                          or line.get("vatExemptionReasonCode")), {})  # fmt: skip
            text, code = vat.reason(
                category, given.get("vatExemptionReason"), given.get("vatExemptionReasonCode")
            )
            net = sum((line["netAmount"] for line in lines), ZERO)
            groups.append(TaxGroup(category, rate, net, ZERO, text, code))
    return groups


# -- invoices -------------------------------------------------------------------------------


def load(raw: bytes) -> Params:
    """A stored document (or notified parameters) as the functions here need it."""
    loaded: Params = numbers(jsoncodec.loads(raw))
    return loaded


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
    sources = [replace(s, parameters=numbers(s.parameters)) for s in sources]
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
        "notes": list(dict.fromkeys(s.memo for s in sources if s.memo)),
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
            "memo": s.memo,
            "metadata": s.metadata or {},
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


def rebill(
    head: Head, original: Params, items: Sequence[Params], note: Params, places: int
) -> Params:
    """The invoice that replaces `original` (credited in full by `note`): its customer,
    contract, addresses, period, order and payment term, with the corrected items; it names
    both (`rebillOf`), and its preliminary part is the corrected lines themselves."""
    document = numbers(original)["invoice"]
    contract = original["externalContractId"]
    lines = [{**numbers(i), "externalContractId": contract} for i in items]
    sums = totals(((i["quantity"], i["grossUnitPrice"], i["vatPercent"]) for i in lines), places)
    fields = ("billToAddress", "shipToAddress", "billingStartDate", "billingEndDate",
              "currency", "invoiceDate", "dueDate")  # fmt: skip
    parameters = {
        "customerNumber": original["customerNumber"],
        "externalContractId": contract,
        "orderReference": document["orderReference"],
        "invoice": {
            **{k: document[k] for k in fields},
            "invoiceReference": document["invoiceNumber"],
            "items": lines,
            "totalGrossAmount": sums.gross,
            "totalNetAmount": sums.net,
        },
    }
    reason = note["creditNote"]["reason"]
    replaced = (
        f"Replaces invoice {document['invoiceNumber']} ({note['creditNoteNumber']}): {reason}"
    )
    source = Source("", f"rebill:{document['invoiceNumber']}", None, parameters, replaced)
    made = invoice(head, [source], places)
    made["invoice"]["rebillOf"] = {
        "invoiceNumber": document["invoiceNumber"],
        "invoiceDate": document["invoiceDate"],
        "creditNoteNumber": note["creditNoteNumber"],
    }
    return made


# -- credit notes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Credited:
    """What is already credited of one invoice line: gross amount, and units by quantity."""

    amount: Decimal = ZERO
    units: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class _Chosen:
    """One item of the credit note being made."""

    line: int
    amount: Decimal  # gross, with the sign of the line
    units: Decimal  # of the invoice line's quantity (0 for a credit by amount)
    by_quantity: bool


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
    total = sum((c.amount for c in chosen), ZERO)
    if total <= 0:
        raise CreditRefused("items", "a credit note must reduce what the customer owes")
    if credited + total > document["totalGrossAmount"]:
        left = document["totalGrossAmount"] - credited
        raise CreditRefused("items", f"only {left} of the invoice remains to credit", True)
    after = {n: c.amount for n, c in before.items()}
    for c in chosen:
        after[c.line] = after.get(c.line, ZERO) + c.amount
    closing = all(after.get(n, ZERO) == line["grossAmount"] for n, line in lines.items())
    groups = _credit_groups(chosen, document, previous, closing, places)
    rows = [(Decimal(1), c.amount, lines[c.line]["vatPercent"]) for c in chosen]
    amounts = line_amounts(rows, groups, places)
    sums = Totals(sum((g.gross for g in groups), ZERO), sum((g.net for g in groups), ZERO), groups)
    items = [
        _credit_line(lines[c.line], c, net) for c, (_, net) in zip(chosen, amounts, strict=True)
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


def _credited_per_line(previous: Sequence[Params]) -> dict[int, _Credited]:
    before: dict[int, _Credited] = {}
    for note in previous:
        for item in note["creditNote"]["items"]:
            was = before.get(item["lineNumber"], _Credited())
            units = item.get("creditedQuantity", ZERO)
            before[item["lineNumber"]] = _Credited(
                was.amount + item["grossAmount"], was.units + units
            )
    return before


def _chosen(
    lines: dict[int, Params],
    before: dict[int, _Credited],
    credits: Sequence[Credit] | None,
    places: int,
) -> list[_Chosen]:
    """The items of the credit note; none given: whatever remains of every line."""
    if credits is None:
        rest = (_rest(n, line, before.get(n, _Credited())) for n, line in lines.items())
        return [c for c in rest if c.amount != 0]
    chosen: list[_Chosen] = []
    for index, credit in enumerate(credits):
        where = f"items.{index}"
        line = lines.get(credit.line)
        if line is None:
            raise CreditRefused(f"{where}.line", f"the invoice has no line {credit.line}")
        if any(c.line == credit.line for c in chosen):
            raise CreditRefused(f"{where}.line", f"line {credit.line} is named twice")
        chosen.append(_choose(line, before.get(credit.line, _Credited()), credit, where, places))
    return chosen


def _rest(n: int, line: Params, before: _Credited) -> _Chosen:
    return _Chosen(n, line["grossAmount"] - before.amount, line["quantity"] - before.units, False)


def _choose(line: Params, before: _Credited, credit: Credit, where: str, places: int) -> _Chosen:
    if credit.quantity is not None and credit.amount is not None:
        raise CreditRefused(where, "give a quantity or an amount, not both")
    if credit.quantity is not None:
        chosen = _by_quantity(line, before, credit.quantity, where, places)
    elif credit.amount is not None:
        if decimals(credit.amount) > places:
            message = f"at most {places} decimals: the minor unit of the invoice's currency"
            raise CreditRefused(f"{where}.amount", message)
        sign = Decimal(-1) if line["grossAmount"] < 0 else Decimal(1)
        chosen = _Chosen(line["lineNumber"], sign * credit.amount, ZERO, False)
    else:
        chosen = _rest(line["lineNumber"], line, before)
    left = line["grossAmount"] - before.amount
    if abs(before.amount + chosen.amount) > abs(line["grossAmount"]):
        message = f"line {line['lineNumber']}: only {abs(left)} remains to credit"
        raise CreditRefused(where, message, conflict=True)
    return chosen


def _by_quantity(
    line: Params, before: _Credited, quantity: Decimal, where: str, places: int
) -> _Chosen:
    """Units are priced cumulatively (round(units × price) − what earlier units took), and the
    last units take exactly what remains: crediting a line unit by unit adds up to the line."""
    units = before.units + quantity
    if units > line["quantity"]:
        message = f"line {line['lineNumber']} has {line['quantity']} units"
        message += f", {before.units} credited already" if before.units else ""
        raise CreditRefused(f"{where}.quantity", message, conflict=bool(before.units))
    price: Decimal = line["grossUnitPrice"]
    if units == line["quantity"]:
        amount = line["grossAmount"] - before.amount
    else:
        amount = round_half_up(units * price, places) - round_half_up(before.units * price, places)
    return _Chosen(line["lineNumber"], amount, quantity, True)


def _credit_groups(
    chosen: Sequence[_Chosen],
    document: Params,
    previous: Sequence[Params],
    closing: bool,
    places: int,
) -> tuple[VatGroup, ...]:
    """VAT groups of the credit note; the closing one takes exactly each group's rest."""
    rate_of = {line["lineNumber"]: line["vatPercent"] for line in document["items"]}
    gross: defaultdict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    for c in chosen:
        gross[rate_of[c.line].normalize()] += c.amount
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


def _credit_line(line: Params, chosen: _Chosen, net: Decimal) -> Params:
    """By quantity or whole: the line's units at its price; by amount: one unit of that amount.
    `creditedQuantity` counts the invoice line's units this item credits."""
    per_unit = chosen.by_quantity or chosen.amount == line["grossAmount"]
    quantity = chosen.units if chosen.units else Decimal(1)
    return {
        "lineNumber": line["lineNumber"],
        "description": line["description"],
        "grossUnitPrice": line["grossUnitPrice"] if per_unit else chosen.amount,
        "quantity": quantity if per_unit else Decimal(1),
        "vatPercent": line["vatPercent"],
        **{key: line[key] for key in VAT_KEYS if key in line},
        "productID": line["productID"],
        "grossAmount": chosen.amount,
        "netAmount": net,
        "creditedQuantity": chosen.units,
    }
