"""Invoices and credit notes for people: a PDF/A-3 with the document's e-invoice embedded as
Factur-X EN16931, showing the amounts the XML states."""

from __future__ import annotations

import io

import facturx
import pypdf

from app import jsoncodec
from tests.conftest import HubClient
from tests.test_einvoice import valid
from tests.test_invoices import complete, finalize, item, seller


async def pdf_of(hub: HubClient, path: str) -> bytes:
    answer = await hub.http.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"].endswith('.pdf"')
    return answer.content


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def assert_pdf_a_3(pdf: bytes) -> None:
    """What PDF/A-3 asks of the file itself: an output intent, every font embedded, XMP that
    declares PDF/A-3 and Factur-X, and the XML attached as the document's associated file."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    catalog = reader.trailer["/Root"]
    assert catalog["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"
    xmp = catalog["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp and b"factur-x" in xmp.lower()
    assert catalog["/AF"][0].get_object()["/F"] == "factur-x.xml"
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            descendant = font.get_object()["/DescendantFonts"][0].get_object()
            assert "/FontFile2" in descendant["/FontDescriptor"]


async def test_an_invoice_pdf_carries_its_e_invoice_and_shows_its_totals(hub: HubClient):
    """The XML extracted from the PDF is the e-invoice byte for byte; the page shows the
    lines, the VAT breakdown and the totals as the document states them."""
    await seller(hub)
    await complete(hub, items=[item("11.99"), item("10.70", vat="7", quantity="2")])
    _, [invoice] = await finalize(hub)
    number = invoice["number"]
    pdf = await pdf_of(hub, f"/v1/invoices/{number}/pdf")
    xml = (await hub.http.get(f"/v1/invoices/{number}/e-invoice")).content
    filename, embedded = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert (filename, embedded) == ("factur-x.xml", xml)
    valid(embedded)  # the XSD and the EN 16931 business rules
    assert_pdf_a_3(pdf)
    text = text_of(pdf)
    document = invoice["document"]["invoice"]
    for total in ("totalGrossAmount", "totalNetAmount", "totalVatAmount"):
        assert f"{jsoncodec.dumps(document[total]).decode()} EUR" in text, total
    assert f"Invoice {number}" in text and document["seller"]["name"] in text
    assert "10.70" in text and "7 %" in text


async def test_a_credit_note_pdf_carries_its_381_e_invoice(hub: HubClient):
    await seller(hub)
    await complete(hub, items=[item("149.95")])
    _, [invoice] = await finalize(hub)
    note = await hub.http.post(
        f"/v1/invoices/{invoice['number']}/credit-notes", json={"reason": "wrong tariff"}
    )
    number = note.json()["number"]
    pdf = await pdf_of(hub, f"/v1/credit-notes/{number}/pdf")
    _, embedded = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert embedded == (await hub.http.get(f"/v1/credit-notes/{number}/e-invoice")).content
    assert b"<ram:TypeCode>381</ram:TypeCode>" in embedded
    valid(embedded)
    assert_pdf_a_3(pdf)
    text = text_of(pdf)
    assert f"Credit note {number}" in text and invoice["number"] in text
    assert "Total gross: 149.95 EUR" in text and "wrong tariff" in text


async def test_a_three_decimal_currency_gets_a_plain_pdf_and_no_e_invoice(hub: HubClient):
    """EN 16931 has no three-decimal amounts, so a KWD invoice has no e-invoice (409 says
    why); it still gets its PDF, a plain PDF/A-3 with every amount. Unknown numbers are 404."""
    await seller(hub)
    await complete(hub, currency="KWD", items=[item("1.235")])
    _, [invoice] = await finalize(hub)
    xml = await hub.http.get(f"/v1/invoices/{invoice['number']}/e-invoice")
    assert xml.status_code == 409 and "BR-DEC" in xml.json()["error"]["message"]
    pdf = await pdf_of(hub, f"/v1/invoices/{invoice['number']}/pdf")
    text = text_of(pdf)
    assert "1.235 KWD" in text and invoice["number"] in text
    catalog = pypdf.PdfReader(io.BytesIO(pdf)).trailer["/Root"]
    assert catalog["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"
    assert "/AF" not in catalog  # nothing embedded: there is no e-invoice to carry
    assert (await hub.http.get("/v1/invoices/INV-2026-000099/pdf")).status_code == 404
    assert (await hub.http.get("/v1/credit-notes/CN-2026-000099/pdf")).status_code == 404


async def test_every_line_is_whole_and_every_page_names_its_document(hub: HubClient):
    """Descriptions were cut at 60 characters, and pages after the first had no invoice
    number, column headings or page number. Now each description is wrapped whole and every
    page carries the number, the headings (on pages the lines run onto) and 'page n of N'."""
    await seller(hub)
    long = "Charging session at station Berlin-Mitte, connector 7, " * 3 + "end-of-line"
    lines = [item("1.00", product=f"P{n}") | {"description": f"{long} #{n}"} for n in range(60)]
    await complete(hub, items=lines)
    _, [invoice] = await finalize(hub)
    pdf = await pdf_of(hub, f"/v1/invoices/{invoice['number']}/pdf")
    pages = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]
    assert len(pages) > 2
    flat = " ".join(" ".join(pages).split())
    for n in range(60):
        assert f"end-of-line #{n}" in flat, n  # the end of each long description is there
    for number, text in enumerate(pages, start=1):
        assert invoice["number"] in text, number
        assert f"page {number} of {len(pages)}" in text, number
    for text in pages[1:-1]:
        assert "Description" in text and "Gross" in text  # the headings repeated
    assert_pdf_a_3(pdf)


async def test_text_beyond_latin_is_shown_and_what_no_font_has_is_never_dropped(
    hub: HubClient,
):
    """Glyphs outside the embedded font vanished (東京, Arabic, emoji), so the PDF and its XML
    disagreed. CJK and Arabic now come from embedded fallback fonts; a character no embedded
    font has is printed as its code point."""
    await seller(hub)
    lines = [
        item("1.00") | {"description": "Trip Tokyo 東京 → Ōsaka 大阪"},
        item("2.00") | {"description": "رحلة إلى دبي"},
        item("3.00") | {"description": "Bonus 😀 ride"},
    ]
    await complete(hub, items=lines)
    _, [invoice] = await finalize(hub)
    pdf = await pdf_of(hub, f"/v1/invoices/{invoice['number']}/pdf")
    text = text_of(pdf)
    assert "東京" in text and "大阪" in text
    assert all(letter in text for letter in "دبيرحلة")  # shaped: joined forms, right to left
    assert "[U+1F600]" in text
    assert_pdf_a_3(pdf)


async def test_the_xmp_carries_every_document_information_entry(hub: HubClient):
    """PDF/A-3: /Keywords in the Info dictionary needs pdf:Keywords in the XMP."""
    await seller(hub)
    await complete(hub)
    _, [invoice] = await finalize(hub)
    pdf = await pdf_of(hub, f"/v1/invoices/{invoice['number']}/pdf")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    info = reader.metadata
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert info is not None and info["/Keywords"]
    assert f"<pdf:Keywords>{info['/Keywords']}</pdf:Keywords>" in xmp
    assert f">{info['/Title']}<" in xmp and f">{info['/Author']}<" in xmp
