"""Human-readable invoices and credit notes: PDF/A-3 pages (fpdf2, which writes the PDF/A
output intent and embeds the fonts) with the document's CII XML embedded as Factur-X EN16931
(the `factur-x` library attaches it and writes the XMP that declares it).

Everything printed comes from the stored document, written as money.plain writes it, so the
pages show exactly what the XML they carry says: every line whole (wrapped, never cut), on as
many pages as it takes, each page naming the document, repeating the column headings and
numbered. The text font is Source Sans Pro; where it has no glyph, Noto Sans JP, SC, TC, KR,
Arabic and Hebrew take over (shaped by HarfBuzz, so Arabic joins and runs right to left); a
character no embedded font has (an emoji) is printed as its code point, never dropped. All
are SIL Open Font License fonts from packages: PDF/A forbids fonts that are not embedded, and a
package keeps `make run` free of machine fonts.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import facturx
import font_source_sans_pro
import justmytype_intl_cjk
import justmytype_intl_rtl
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace
from lxml import etree
from pypdf import PdfWriter
from pypdf.generic import StreamObject

from app import vat
from app.invoicing.documents import tax_groups
from app.money import plain

Params = dict[str, Any]
FONT = "SourceSans"
_FILES = os.path.join(font_source_sans_pro.font_directory, "SourceSansPro-{}.ttf")
WIDTHS = (10, 74, 18, 24, 14, 25, 25)  # #, description, qty, unit price, VAT, net, gross (mm)
HEADINGS = ("#", "Description", "Qty", "Unit price", "VAT %", "Net", "Gross")
ALIGN = ("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT")
_CJK = Path(justmytype_intl_cjk.__file__).parent / "fonts" / "ofl"
_RTL = Path(justmytype_intl_rtl.__file__).parent / "fonts" / "ofl"
# Tried in this order for a glyph Source Sans Pro lacks.
FALLBACKS = {
    "NotoJP": _CJK / "notosansjp" / "NotoSansJP[wght].ttf",
    "NotoSC": _CJK / "notosanssc" / "NotoSansSC[wght].ttf",
    "NotoTC": _CJK / "notosanstc" / "NotoSansTC[wght].ttf",
    "NotoKR": _CJK / "notosanskr" / "NotoSansKR[wght].ttf",
    "NotoArabic": _RTL / "notosansarabic" / "NotoSansArabic[wdth,wght].ttf",
    "NotoHebrew": _RTL / "notosanshebrew" / "NotoSansHebrew[wdth,wght].ttf",
}
_XMP_PDF = "http://ns.adobe.com/pdf/1.3/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


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


KEYWORDS = "Factur-X"


def render(page: Page, document: Params, customer: str, xml: bytes | None) -> bytes:
    """The pages as PDF/A-3 with `xml` embedded as their Factur-X EN16931 data; without one
    (a currency EN 16931 cannot express), the same pages as a plain PDF/A-3."""
    pdf = _Sheet(document["currency"], page, _texts(page, document, customer))
    pdf.header_block(page, document["seller"], document["billToAddress"], customer)
    pdf.lines(document["items"])
    pdf.breakdown(document)
    if page.note:
        pdf.ln(6)
        pdf.set_font(FONT, "", 10)
        pdf.multi_cell(0, 5, pdf.printable(page.note))
    if xml is None:
        pdf.set_title(f"{page.title} {page.number}")
        pdf.set_author(document["seller"]["name"])
        pdf.set_subject(page.title)
        return bytes(pdf.output())
    out: bytes = facturx.generate_from_binary(
        bytes(pdf.output()),
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=False,  # drafthorse checked it as it wrote it
        pdf_metadata={
            "author": document["seller"]["name"],
            "keywords": KEYWORDS,
            "title": f"{page.title} {page.number}",
            "subject": page.title,
        },
        lang="en-GB",
    )
    return _with_keywords_in_xmp(out, KEYWORDS)


def _with_keywords_in_xmp(pdf: bytes, keywords: str) -> bytes:
    """PDF/A: every document information entry has its XMP twin. factur-x writes /Keywords
    into the Info dictionary but not pdf:Keywords into the XMP: added beside pdf:Producer."""
    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    stream = writer.root_object["/Metadata"].get_object()
    assert isinstance(stream, StreamObject), "factur-x writes an XMP packet"
    root = etree.fromstring(stream.get_data())
    producer = root.find(f".//{{{_XMP_PDF}}}Producer")
    holder = (
        producer.getparent() if producer is not None else root.find(f".//{{{_RDF}}}Description")
    )
    assert holder is not None, "an XMP packet has a description"
    etree.SubElement(holder, f"{{{_XMP_PDF}}}Keywords").text = keywords
    stream.set_data(etree.tostring(root, encoding="utf-8"))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _texts(page: Page, document: Params, customer: str) -> str:
    """Every text the pages print: which fallback fonts they need."""
    parts = [page.title, page.number, page.note or "", customer, *(v for _, v in page.dates)]
    parts += [str(v) for v in document["seller"].values()]
    parts += [str(v) for v in document["billToAddress"].values()]
    parts += [str(item["description"]) for item in document["items"]]
    return "".join(parts)


@functools.cache
def _coverage(path: str) -> frozenset[int]:
    """The code points a font has glyphs for (read once per process)."""
    with TTFont(path, lazy=True) as font:
        return frozenset(font.getBestCmap())


def _fallbacks(text: str) -> list[str]:
    """The fallback fonts `text` needs, in their order of preference."""
    missing = {ord(c) for c in text} - _coverage(_FILES.format("Regular"))
    needed = []
    for name, path in FALLBACKS.items():
        covered = missing & _coverage(str(path))
        if covered:
            needed.append(name)
            missing -= covered
    return needed


class _Sheet(FPDF):
    def __init__(self, currency: str, page: Page, texts: str) -> None:
        super().__init__(format="A4", enforce_compliance="PDF/A-3B")
        self.currency = currency
        self.page_info = page
        self.set_auto_page_break(True, margin=18)
        self.add_font(FONT, "", _FILES.format("Regular"))
        self.add_font(FONT, "B", _FILES.format("Bold"))
        fallbacks = _fallbacks(texts)
        for name in fallbacks:
            self.add_font(name, "", str(FALLBACKS[name]))
            self.add_font(name, "B", str(FALLBACKS[name]))
        self.set_fallback_fonts(fallbacks, exact_match=False)
        if {"NotoArabic", "NotoHebrew"} & set(fallbacks):
            self.set_text_shaping(True)  # joined forms, right to left (HarfBuzz): only if needed
        self.covered = _coverage(_FILES.format("Regular")).union(
            *(_coverage(str(FALLBACKS[n])) for n in fallbacks)
        )
        self.add_page()

    def header(self) -> None:
        """Every page after the first names its document (the first has the full heading)."""
        if self.page_no() > 1:
            self.set_font(FONT, "", 8)
            self.cell(0, 5, f"{self.page_info.title} {self.page_info.number}", align="L",
                      new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
            self.ln(2)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, "", 8)
        self.cell(0, 5, f"{self.page_info.title} {self.page_info.number} — page "
                  f"{self.page_no()} of {{nb}}", align="C")  # fmt: skip

    def printable(self, text: str) -> str:
        """`text` with each character no embedded font can show written as its code point,
        so nothing the XML says silently disappears from the page."""
        if all(ord(c) in self.covered for c in text):
            return text
        return "".join(
            c if ord(c) in self.covered or c in "\n\t" else f"[U+{ord(c):04X}]" for c in text
        )

    def text_line(self, text: str, size: float = 10, style: str = "", width: float = 0) -> None:
        self.set_font(FONT, style, size)
        self.multi_cell(width, 5, self.printable(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

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

    def lines(self, items: Sequence[Params]) -> None:
        """A table: each description whole, wrapped in its cell; the headings again on every
        page the lines run onto."""
        self.set_font(FONT, "", 9)
        with self.table(
            col_widths=WIDTHS,
            width=sum(WIDTHS),
            text_align=ALIGN,
            headings_style=FontFace(emphasis="BOLD"),
            repeat_headings=1,
            line_height=5,
            borders_layout="HORIZONTAL_LINES",
        ) as table:
            table.row(HEADINGS)
            for item in items:
                table.row(
                    (
                        str(item["lineNumber"]),
                        self.printable(str(item["description"])),
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
        for group in tax_groups(document):
            why = "; ".join(p for p in (group.reason, group.code) if p)
            label = f"{plain(group.rate)} % ({group.category}, {vat.NAMES[group.category]}"
            label += f": {why})" if why else ")"
            self.text_line(
                f"{label}: net {self.money(group.net)}, VAT {self.money(group.vat)}, "
                f"gross {self.money(group.net + group.vat)}",
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
