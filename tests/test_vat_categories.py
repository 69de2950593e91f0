"""VAT categories beyond standard and zero rated: exempt (E) with its reason, reverse charge
(AE), intra-community supply (K) and export (G), each beside a standard-rated line, valid under
the EN 16931 Schematron as invoice and as credit note; lines that cannot be what they claim are
refused where they come in. 0 % without a category stays zero rated (Z)."""

from __future__ import annotations

from typing import Any

import pytest

from app import jsoncodec
from tests.conftest import HubClient
from tests.test_billing import FIXTURES, post
from tests.test_einvoice import texts, valid
from tests.test_invoices import complete, finalize, item, seller

BUYER = {"countryCode": "FR", "postalCode": "75001", "postalPlace": "Paris",
         "name": "Client SARL", "vatId": "FR12345678901"}  # fmt: skip


async def documents_of(hub: HubClient, items: list[dict[str, Any]], **changes: Any) -> tuple:
    await seller(hub)
    await complete(hub, items=items, **changes)
    _, [invoice] = await finalize(hub)
    number = invoice["number"]
    xml = await hub.http.get(f"/v1/invoices/{number}/e-invoice")
    assert xml.status_code == 200, xml.text
    note = await post(hub, f"/v1/invoices/{number}/credit-notes", {"reason": "returned"})
    assert note.status_code == 201, note.text
    credit = await hub.http.get(f"/v1/credit-notes/{note.json()['number']}/e-invoice")
    assert credit.status_code == 200, credit.text
    return xml.content, credit.content


@pytest.mark.parametrize(
    ("category", "extra", "code"),
    [
        ("E", {"vatExemptionReason": "Medical care (Art. 132(1)(c) Directive 2006/112/EC)"}, None),
        ("E", {"vatExemptionReasonCode": "VATEX-EU-132-1C"}, "VATEX-EU-132-1C"),
        ("AE", {}, "VATEX-EU-AE"),
        ("K", {}, "VATEX-EU-IC"),
        ("G", {}, "VATEX-EU-G"),
    ],
)
async def test_each_category_is_a_valid_e_invoice_and_credit_note(
    hub: HubClient, category: str, extra: dict[str, Any], code: str | None
):
    line = item("40.00", vat="0") | {"vatCategory": category, **extra}
    invoice, credit = await documents_of(hub, [item("11.90"), line], billToAddress=BUYER)
    for xml in (invoice, credit):
        root = valid(xml)  # XSD and the EN 16931 business rules: no rule fires
        categories = texts(root, ".//ram:ApplicableTradeTax/ram:CategoryCode")
        assert category in categories and "S" in categories
        if code:
            assert code in texts(root, ".//ram:ApplicableTradeTax/ram:ExemptionReasonCode")


async def test_zero_rated_stays_the_default_at_zero_percent(hub: HubClient):
    invoice, _ = await documents_of(hub, [item("8.00", vat="0")])
    root = valid(invoice)
    assert texts(root, ".//ram:ApplicableTradeTax/ram:CategoryCode") == ["Z"] * 2


async def test_the_passed_on_parking_fine_is_exempt_with_its_reason(hub: HubClient):
    """A fine paid in the customer's name and passed on is no consideration for a supply
    (a transitory item): not standard or zero rated. EN 16931 forbids 'not subject to VAT' (O)
    beside other categories (BR-O-11), so the fixture states it as exempt with that reason."""
    await seller(hub)
    charge = jsoncodec.loads((FIXTURES / "charge.example.json").read_bytes())
    [fine] = [i for i in charge["items"] if i["productID"] == "FEE-PARK"]
    assert fine["vatCategory"] == "E" and "Durchlaufender Posten" in fine["vatExemptionReason"]
    answer = await post(hub, "/v1/charges", charge | {"billToAddress": BUYER})
    assert answer.status_code == 202, answer.text
    _, [invoice] = await finalize(hub)
    xml = await hub.http.get(f"/v1/invoices/{invoice['number']}/e-invoice")
    root = valid(xml.content)
    assert texts(root, ".//ram:ApplicableTradeTax/ram:CategoryCode") == ["E", "S", "E", "S"]
    pdf = await hub.http.get(f"/v1/invoices/{invoice['number']}/pdf")
    assert pdf.status_code == 200


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (item("10.00", vat="0") | {"vatCategory": "E"}, "states why"),
        (item("10.00", vat="0") | {"vatCategory": "S"}, "above 0 %"),
        (item("10.00", vat="19") | {"vatCategory": "AE"}, "is 0 %"),
        (item("10.00", vat="0") | {"vatExemptionReason": "why not"}, "no exemption reason"),
        (item("10.00", vat="0") | {"vatCategory": "O"}, "vatCategory"),
    ],
)
async def test_a_line_that_cannot_be_its_category_is_refused(
    hub: HubClient, line: dict[str, Any], why: str
):
    body = {"customerNumber": "C-1", "currency": "EUR", "items": [line],
            "billToAddress": BUYER}  # fmt: skip
    answer = await post(hub, "/v1/charges", body)
    assert answer.status_code == 422 and why in answer.text, answer.text


async def test_reverse_charge_without_the_buyers_vat_id_has_no_e_invoice_and_says_why(
    hub: HubClient,
):
    await seller(hub)
    line = item("40.00", vat="0") | {"vatCategory": "AE"}
    await complete(hub, items=[line])
    _, [invoice] = await finalize(hub)
    xml = await hub.http.get(f"/v1/invoices/{invoice['number']}/e-invoice")
    assert xml.status_code == 409 and "BT-48" in xml.json()["error"]["message"]
