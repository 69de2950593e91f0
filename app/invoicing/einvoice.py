"""EN 16931 e-invoices: a finalized invoice (TypeCode 380) or a credit note (TypeCode 381, with
the invoice it corrects as BT-25) as UN/CEFACT CII XML (Factur-X / ZUGFeRD profile EN16931),
built with drafthorse, which validates what it writes against the profile's XSD.

The XML is rendered from the stored document, never from live data, so it says exactly what
the invoice said when it was finalized. Amounts follow the document: line nets add up to each
VAT group's net; a line with a negative gross becomes a negative quantity at a positive net
price (BR-27); the VAT of a group is the document's (gross − net by the divisor method).
Every number is written as money.plain writes it (drafthorse writes str(), which may be
"2E+1"). EN 16931 allows at most two decimals in amounts (BR-DEC-*): a currency with three
minor units (BHD, KWD, …) has no e-invoice, and NotRepresentable says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentTerms
from drafthorse.models.tradelines import LineItem

from app import vat
from app.invoicing import documents
from app.money import minor_units, plain

SCHEMA = "FACTUR-X_EN16931"
GUIDELINE = "urn:cen.eu:en16931:2017"
UNIT = "C62"  # "one": billed usage is described in the line's text
PRICE_PLACES = Decimal("0.0001")
MAX_PLACES = 2  # BR-DEC-*: amounts in an EN 16931 invoice have at most two decimals
Params = dict[str, Any]


class NotRepresentable(ValueError):
    """The document cannot be an EN 16931 e-invoice (the message says why)."""


class _Plain(Decimal):
    """A Decimal that drafthorse's str() writes in plain notation."""

    def __str__(self) -> str:
        return plain(self)


def _d(value: Decimal) -> _Plain:
    return _Plain(value)


@dataclass(frozen=True, slots=True)
class _Header:
    """What differs between an invoice and a credit note; the rest is rendered alike."""

    number: str
    type_code: str
    issued: date
    period: tuple[str, str]
    due: str | None
    terms: str | None  # BT-20, when no due date applies
    preceding: tuple[str, str] | None  # BT-25 / BT-26: the corrected invoice, its date
    order_reference: str | None


def cii(invoice: Params) -> bytes:
    """The invoice document (`invoices/invoiceFinalized` parameters, every number a Decimal:
    documents.load) as CII XML."""
    document = invoice["invoice"]
    header = _Header(
        number=document["invoiceNumber"],
        type_code="380",  # commercial invoice
        issued=date.fromisoformat(document["invoiceDate"]),
        period=(document["billingStartDate"], document["billingEndDate"]),
        due=document["dueDate"],
        terms=None,
        preceding=_replaced(document),
        order_reference=document.get("orderReference"),
    )
    return _render(header, document, invoice["customerNumber"], document.get("notes", ()), document)


def credit_note_cii(note: Params, invoice: Params) -> bytes:
    """A credit note (`invoices/creditNoteCreated` parameters) as CII XML: amounts positive as
    credited, the supply period and order of the invoice it corrects, that invoice as BT-25,
    and the reason as a note. Nothing is due, so the payment terms say what it settles."""
    document, corrected = note["creditNote"], invoice["invoice"]
    header = _Header(
        number=document["creditNoteNumber"],
        type_code="381",  # credit note
        issued=date.fromisoformat(document["creditNoteDate"]),
        period=(corrected["billingStartDate"], corrected["billingEndDate"]),
        due=None,
        terms=f"Credited against invoice {document['invoiceNumber']}",
        preceding=(document["invoiceNumber"], corrected["invoiceDate"]),
        order_reference=corrected.get("orderReference"),
    )
    return _render(header, document, note["customerNumber"], [document["reason"]], corrected)


def _replaced(document: Params) -> tuple[str, str] | None:
    """A rebill's invoice names the invoice it replaces as its preceding invoice (BT-25)."""
    replaced = document.get("rebillOf")
    return None if replaced is None else (replaced["invoiceNumber"], replaced["invoiceDate"])


def _render(
    header: _Header, document: Params, customer: str, notes: Iterable[str], invoice: Params
) -> bytes:
    """`invoice`: the invoice's own document (a credit note's is the one it corrects), for
    what a credit note does not repeat (where the goods went)."""
    places = minor_units(document["currency"])
    if places > MAX_PLACES:
        raise NotRepresentable(
            f"{document['currency']} has {places} decimals; EN 16931 allows amounts with at "
            f"most {MAX_PLACES} (rules BR-DEC-*), so this document has no e-invoice; its PDF "
            "is a plain PDF/A-3"
        )
    categories = {_category_of(line) for line in document["items"]}
    _check_parties(categories, document)
    doc = Document()
    doc.context.guideline_parameter.id = GUIDELINE
    doc.header.id = header.number
    doc.header.type_code = header.type_code
    doc.header.issue_date_time = header.issued
    for text in notes:
        note = IncludedNote()
        note.content = text
        doc.header.notes.add(note)  # BT-22
    _parties(doc, document, customer, header.order_reference)
    doc.trade.delivery.event.occurrence = date.fromisoformat(header.period[1])
    if "K" in categories:  # BR-IC-12: where an intra-community supply went
        ship_to = invoice.get("shipToAddress") or document["billToAddress"]
        doc.trade.delivery.ship_to.address.country_id = ship_to["countryCode"]
    for line in document["items"]:
        doc.trade.items.add(_line(line))
    _settlement(doc, document, header)
    xml: bytes = doc.serialize(schema=SCHEMA)
    return xml


def _parties(doc: Document, document: Params, customer: str, order: str | None) -> None:
    seller = document["seller"]
    agreement = doc.trade.agreement
    agreement.seller.name = seller["name"]
    _address(agreement.seller.address, seller)
    if seller.get("legalRegistrationId"):
        agreement.seller.legal_organization.id = seller["legalRegistrationId"]  # BT-30
    for scheme, key in (("VA", "vatId"), ("FC", "taxNumber")):
        if seller.get(key):
            registration = TaxRegistration()
            registration.id = (scheme, seller[key])
            agreement.seller.tax_registrations.add(registration)
    bill_to = document["billToAddress"]
    agreement.buyer.id = customer
    agreement.buyer.name = bill_to.get("name") or f"Customer {customer}"
    _address(agreement.buyer.address, bill_to)
    if bill_to.get("vatId"):  # BT-48
        registration = TaxRegistration()
        registration.id = ("VA", bill_to["vatId"])
        agreement.buyer.tax_registrations.add(registration)
    if order:
        agreement.buyer_order.issuer_assigned_id = order


def _address(target: Any, address: Params) -> None:
    street = " ".join(p for p in (address.get("street"), address.get("streetNumber")) if p)
    if address.get("postalCode"):
        target.postcode = address["postalCode"]
    if street:
        target.line_one = street
    if address.get("postalPlace"):
        target.city_name = address["postalPlace"]
    target.country_id = address["countryCode"]


def _line(line: Params) -> LineItem:
    item = LineItem()
    item.document.line_id = str(line["lineNumber"])
    item.product.seller_assigned_id = line["productID"]
    item.product.name = line["description"]
    quantity: Decimal = line["quantity"]
    net: Decimal = line["netAmount"]
    if line["grossAmount"] < 0:  # BR-27: never a negative price; the quantity carries the sign
        quantity = -abs(quantity)
    price = (abs(net) / abs(quantity)).quantize(PRICE_PLACES) if quantity else Decimal(0)
    item.agreement.net.amount = _d(price)
    item.delivery.billed_quantity = (_d(quantity), UNIT)
    item.settlement.trade_tax.type_code = "VAT"
    item.settlement.trade_tax.category_code = _category_of(line)
    item.settlement.trade_tax.rate_applicable_percent = _d(line["vatPercent"])
    item.settlement.monetary_summation.total_amount = _d(net)
    return item


def _settlement(doc: Document, document: Params, header: _Header) -> None:
    settlement = doc.trade.settlement
    currency = document["currency"]
    settlement.currency_code = currency
    for group in _breakdown(document):
        settlement.trade_tax.add(group)
    settlement.period.start = date.fromisoformat(header.period[0])
    settlement.period.end = date.fromisoformat(header.period[1])
    if header.preceding is not None:
        reference = settlement.invoice_referenced_document
        reference.issuer_assigned_id = header.preceding[0]  # BT-25
        reference.issue_date_time = date.fromisoformat(header.preceding[1])  # BT-26
    terms = PaymentTerms()
    if header.due is not None:
        terms.due = date.fromisoformat(header.due)
    if header.terms is not None:
        terms.description = header.terms
    settlement.terms.add(terms)
    total = settlement.monetary_summation
    total.line_total = _d(sum((line["netAmount"] for line in document["items"]), Decimal(0)))
    total.tax_basis_total = _d(document["totalNetAmount"])
    total.tax_total = (_d(document["totalVatAmount"]), currency)
    total.grand_total = _d(document["totalGrossAmount"])
    total.due_amount = _d(document["totalGrossAmount"])


def _category_of(line: Params) -> str:
    """The line's VAT category: as given, else S above 0 % and Z at 0 % (app/vat.py)."""
    return vat.category(line["vatPercent"], line.get("vatCategory"))


def _check_parties(categories: set[str], document: Params) -> None:
    """What EN 16931 asks of the parties for these categories (BR-AE-02, BR-IC-02, BR-G-02)."""
    needs_buyer = categories & set(vat.NEEDS_BUYER_VAT_ID)
    if needs_buyer and not document["billToAddress"].get("vatId"):
        raise NotRepresentable(
            f"lines of category {', '.join(sorted(needs_buyer))} need the buyer's VAT identifier "
            "(billToAddress.vatId, BT-48)"
        )
    if categories & {"AE", "K", "G"} and not document["seller"].get("vatId"):
        raise NotRepresentable("reverse charge, intra-community and export lines need the "
                               "seller's VAT identifier (seller.vatId)")  # fmt: skip


def _breakdown(document: Params) -> list[ApplicableTradeTax]:
    """BG-23, one group per (category, rate) (documents.tax_groups)."""
    return [
        _tax(g.category, g.rate, g.net, g.vat, g.reason, g.code)
        for g in documents.tax_groups(document)
    ]


def _tax(
    category: str, rate: Decimal, basis: Decimal, amount: Decimal, text: str | None,
    code: str | None,
) -> ApplicableTradeTax:  # fmt: skip
    tax = ApplicableTradeTax()
    tax.calculated_amount = _d(amount)
    tax.type_code = "VAT"
    if text:
        tax.exemption_reason = text
    tax.basis_amount = _d(basis)
    tax.category_code = category
    if code:
        tax.exemption_reason_code = code
    tax.rate_applicable_percent = _d(rate)
    return tax
