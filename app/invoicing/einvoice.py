"""EN 16931 e-invoices: a finalized invoice as UN/CEFACT CII XML (Factur-X / ZUGFeRD profile
EN16931), built with drafthorse, which validates what it writes against the profile's XSD.

The XML is rendered from the stored document, never from live data, so it says exactly what
the invoice said when it was finalized. Amounts follow the document: line nets add up to each
VAT group's net; a line with a negative gross becomes a negative quantity at a positive net
price (BR-27); the VAT of a group is the document's (gross − net by the divisor method).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentTerms
from drafthorse.models.tradelines import LineItem

SCHEMA = "FACTUR-X_EN16931"
GUIDELINE = "urn:cen.eu:en16931:2017"
UNIT = "C62"  # "one": billed usage is described in the line's text
PRICE_PLACES = Decimal("0.0001")
Params = dict[str, Any]


def cii(invoice: Params) -> bytes:
    """The invoice document (`invoices/invoiceFinalized` parameters) as CII XML."""
    document = invoice["invoice"]
    doc = Document()
    doc.context.guideline_parameter.id = GUIDELINE
    doc.header.id = document["invoiceNumber"]
    doc.header.type_code = "380"  # commercial invoice
    doc.header.issue_date_time = date.fromisoformat(document["invoiceDate"])
    _parties(doc, invoice)
    doc.trade.delivery.event.occurrence = date.fromisoformat(document["billingEndDate"])
    for line in document["items"]:
        doc.trade.items.add(_line(line))
    _settlement(doc, document)
    xml: bytes = doc.serialize(schema=SCHEMA)
    return xml


def _parties(doc: Document, invoice: Params) -> None:
    document = invoice["invoice"]
    seller = document["seller"]
    agreement = doc.trade.agreement
    agreement.seller.name = seller["name"]
    _address(agreement.seller.address, seller)
    for scheme, key in (("VA", "vatId"), ("FC", "taxNumber")):
        if seller.get(key):
            registration = TaxRegistration()
            registration.id = (scheme, seller[key])
            agreement.seller.tax_registrations.add(registration)
    bill_to = document["billToAddress"]
    agreement.buyer.id = invoice["customerNumber"]
    agreement.buyer.name = bill_to.get("name") or f"Customer {invoice['customerNumber']}"
    _address(agreement.buyer.address, bill_to)
    if document.get("orderReference"):
        agreement.buyer_order.issuer_assigned_id = document["orderReference"]


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
    item.agreement.net.amount = price
    item.delivery.billed_quantity = (quantity, UNIT)
    item.settlement.trade_tax.type_code = "VAT"
    item.settlement.trade_tax.category_code = _category(line["vatPercent"])
    item.settlement.trade_tax.rate_applicable_percent = line["vatPercent"]
    item.settlement.monetary_summation.total_amount = net
    return item


def _settlement(doc: Document, document: Params) -> None:
    settlement = doc.trade.settlement
    currency = document["currency"]
    settlement.currency_code = currency
    for group in document["vatBreakdown"]:
        tax = ApplicableTradeTax()
        tax.calculated_amount = group["vatAmount"]
        tax.type_code = "VAT"
        tax.basis_amount = group["netAmount"]
        tax.category_code = _category(group["vatPercent"])
        tax.rate_applicable_percent = group["vatPercent"]
        settlement.trade_tax.add(tax)
    settlement.period.start = date.fromisoformat(document["billingStartDate"])
    settlement.period.end = date.fromisoformat(document["billingEndDate"])
    terms = PaymentTerms()
    terms.due = date.fromisoformat(document["dueDate"])
    settlement.terms.add(terms)
    total = settlement.monetary_summation
    total.line_total = sum((line["netAmount"] for line in document["items"]), Decimal(0))
    total.tax_basis_total = document["totalNetAmount"]
    total.tax_total = (document["totalVatAmount"], currency)
    total.grand_total = document["totalGrossAmount"]
    total.due_amount = document["totalGrossAmount"]


def _category(vat_percent: Decimal) -> str:
    """S: standard (or reduced) rate; Z: zero rated."""
    return "S" if vat_percent else "Z"
