"""Human-readable invoices and credit notes: a PDF/A-3 page (fpdf2, which writes the PDF/A
output intent and embeds the fonts) with the document's CII XML embedded as Factur-X EN16931
(the `factur-x` library attaches it and writes the XMP that declares it).

Everything printed comes from the stored document, written as money.plain writes it, so the
page shows exactly the amounts of the XML it carries. The fonts are Source Sans Pro (SIL Open
Font License) from the `font-source-sans-pro` package: PDF/A forbids fonts that are not
embedded, and a package keeps `make run` free of machine fonts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import facturx
import font_source_sans_pro
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from app.money import plain

Params = dict[str, Any]
FONT = "SourceSans"
_FILES = os.path.join(font_source_sans_pro.font_directory, "SourceSansPro-{}.ttf")
WIDTHS = (10, 74, 18, 24, 14, 25, 25)  # #, description, qty, unit price, VAT, net, gross (mm)


@dataclass(frozen=True, slots=True)
class Page:
    """What the page says beyond the document's own fields."""

    title: str
    number: str
    dates: Sequence[tuple[str, str]]
    note: str | None


def invoice_page(invoice: Params) -> Page:
    document = invoice["invoice"]
    dates = [
        ("Invoice date", document["invoiceDate"]),
        ("Due date", document["dueDate"]),
        ("Period", f"{document['billingStartDate']} – {document['billingEndDate']}"),
    ]
    notes = "\n".join(document.get("notes", ())) or None
    return Page("Invoice", document["invoiceNumber"], dates, notes)


def credit_note_page(note: Params) -> Page:
    document = note["creditNote"]
    dates = [("Date", document["creditNoteDate"]), ("Corrects invoice", document["invoiceNumber"])]
    return Page("Credit note", document["creditNoteNumber"], dates, f"Reason: {document['reason']}")


def factur_x(page: Page, document: Params, customer: str, xml: bytes) -> bytes:
    """The page as PDF/A-3 with `xml` embedded as its Factur-X EN16931 data."""
    pdf = _Sheet(document["currency"])
    pdf.header_block(page, document["seller"], document["billToAddress"], customer)
    pdf.lines(document["items"])
    pdf.breakdown(document)
    if page.note:
        pdf.ln(6)
        pdf.multi_cell(0, 5, page.note)
    out: bytes = facturx.generate_from_binary(
        bytes(pdf.output()),
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=False,  # drafthorse checked it as it wrote it
        pdf_metadata={
            "author": document["seller"]["name"],
            "keywords": "Factur-X",
            "title": f"{page.title} {page.number}",
            "subject": page.title,
        },
        lang="en-GB",
    )
    return out


class _Sheet(FPDF):
    def __init__(self, currency: str) -> None:
        super().__init__(format="A4", enforce_compliance="PDF/A-3B")
        self.currency = currency
        self.set_auto_page_break(True, margin=15)
        self.add_font(FONT, "", _FILES.format("Regular"))
        self.add_font(FONT, "B", _FILES.format("Bold"))
        self.add_page()

    def text_line(self, text: str, size: float = 10, style: str = "", width: float = 0) -> None:
        self.set_font(FONT, style, size)
        self.cell(width, 5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def header_block(self, page: Page, seller: Params, buyer: Params, customer: str) -> None:
        self.text_line(seller["name"], 12, "B")
        for line in _address_lines(seller):
            self.text_line(line, 9)
        for label, key in (
            ("VAT id", "vatId"),
            ("Tax number", "taxNumber"),
            ("Registration", "legalRegistrationId"),
        ):
            if seller.get(key):
                self.text_line(f"{label}: {seller[key]}", 9)
        self.ln(6)
        self.text_line(buyer.get("name") or f"Customer {customer}", 10, "B")
        for line in _address_lines(buyer):
            self.text_line(line)
        self.text_line(f"Customer number: {customer}", 9)
        self.ln(6)
        self.text_line(f"{page.title} {page.number}", 16, "B")
        for label, value in page.dates:
            self.text_line(f"{label}: {value}", 9)
        self.ln(4)

    def row(self, cells: Iterable[str], style: str = "") -> None:
        self.set_font(FONT, style, 9)
        for index, (text, width) in enumerate(zip(cells, WIDTHS, strict=True)):
            align = "L" if index < 2 else "R"
            self.cell(width, 6, text, border="B", align=align)
        self.ln()

    def lines(self, items: Sequence[Params]) -> None:
        self.row(("#", "Description", "Qty", "Unit price", "VAT %", "Net", "Gross"), "B")
        for item in items:
            self.row(
                (
                    str(item["lineNumber"]),
                    item["description"][:60],
                    plain(item["quantity"]),
                    plain(item["grossUnitPrice"]),
                    plain(item["vatPercent"]),
                    self.money(item["netAmount"]),
                    self.money(item["grossAmount"]),
                )
            )

    def breakdown(self, document: Params) -> None:
        self.ln(4)
        self.text_line("VAT breakdown", 10, "B")
        for group in document["vatBreakdown"]:
            self.text_line(
                f"{plain(group['vatPercent'])} %: net {self.money(group['netAmount'])}, "
                f"VAT {self.money(group['vatAmount'])}, "
                f"gross {self.money(group['grossAmount'])}",
                9,
            )
        self.ln(2)
        for label, key in (("Total net", "totalNetAmount"), ("Total VAT", "totalVatAmount")):
            self.text_line(f"{label}: {self.money(document[key])}", 10)
        self.text_line(f"Total gross: {self.money(document['totalGrossAmount'])}", 12, "B")

    def money(self, amount: Decimal) -> str:
        return f"{plain(amount)} {self.currency}"


def _address_lines(address: Params) -> list[str]:
    street = " ".join(p for p in (address.get("street"), address.get("streetNumber")) if p)
    place = " ".join(p for p in (address.get("postalCode"), address.get("postalPlace")) if p)
    return [line for line in (street, place, address["countryCode"]) if line]
