"""The e-invoice: EN 16931 CII XML (Factur-X profile EN16931) that validates against the
profile's XSD and obeys the EN 16931 business rules (Schematron), with BR-27 prices and line
nets that add up to each VAT group."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import drafthorse
import pytest
from lxml import etree

from app import jsoncodec
from app.testing import FrozenClock
from tests.conftest import START_MS, HubClient
from tests.schematron import fired_rules
from tests.test_billing import completion, fixture, post
from tests.test_invoices import complete, finalize, item, seller

XSD = Path(drafthorse.__file__).parent / "schema" / "Factur-X_1.0.07_EN16931.xsd"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}


def valid(xml: bytes) -> etree._Element:
    """Parsed, checked against the official XSD (independently of drafthorse's own check) and
    against the EN 16931 business rules: no rule may fire."""
    schema = etree.XMLSchema(file=str(XSD))
    root = etree.fromstring(xml)
    schema.assertValid(root)
    assert fired_rules(xml) == []
    return root


def texts(root: etree._Element, path: str) -> list[str]:
    return [str(e.text) for e in root.iterfind(path, NS)]


async def e_invoice(hub: HubClient, number: str) -> etree._Element:
    answer = await hub.http.get(f"/v1/invoices/{number}/e-invoice")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/xml"
    return valid(answer.content)


async def test_the_seed_example_is_a_schema_valid_e_invoice(hub_factory):
    """A small invoice (7.99 EUR) with a discount line: the discount is a negative quantity at
    a positive net price, and the line nets add up to the VAT group's net."""
    hub: HubClient = await hub_factory(clock=FrozenClock(START_MS))
    await seller(hub)
    await post(hub, "/v1/usage-completions", fixture("usage-completion.seed.json"))
    _, [invoice] = await finalize(hub)
    root = await e_invoice(hub, invoice["number"])
    line = ".//ram:IncludedSupplyChainTradeLineItem"
    assert texts(root, f"{line}//ram:BilledQuantity") == ["1.0", "-1.0"]  # as the seed sent
    prices = [
        Decimal(p) for p in texts(root, f"{line}//ram:NetPriceProductTradePrice/ram:ChargeAmount")
    ]
    assert all(p > 0 for p in prices)  # BR-27
    nets = [Decimal(n) for n in texts(root, f"{line}//ram:LineTotalAmount")]
    assert nets == [Decimal("10.07"), Decimal("-3.36")]
    assert texts(
        root, ".//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:BasisAmount"
    ) == ["6.71"]
    assert sum(nets) == Decimal("6.71")
    assert texts(root, ".//ram:GrandTotalAmount") == ["7.99"]
    assert texts(root, ".//rsm:ExchangedDocument/ram:ID") == [invoice["number"]]
    assert texts(root, ".//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == [
        "DE123456789"
    ]
    assert texts(root, ".//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == [
        "urn:cen.eu:en16931:2017"
    ]


async def test_several_rates_and_fractional_quantities(hub: HubClient):
    await seller(hub)
    items = [item("0.29", quantity="42.5", product="minutes"), item("10.70", vat="7"),
             item("0", vat="0", product="free km")]  # fmt: skip
    await complete(hub, items=items)
    _, [invoice] = await finalize(hub)
    root = await e_invoice(hub, invoice["number"])
    groups = root.findall(".//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", NS)
    by_rate = {
        g.findtext("ram:RateApplicablePercent", namespaces=NS): Decimal(
            g.findtext("ram:BasisAmount", namespaces=NS) or "0"
        )
        for g in groups
    }
    lines = root.findall(".//ram:IncludedSupplyChainTradeLineItem", NS)
    for rate, basis in by_rate.items():
        nets = [
            Decimal(li.findtext(".//ram:LineTotalAmount", namespaces=NS) or "0")
            for li in lines
            if li.findtext(".//ram:RateApplicablePercent", namespaces=NS) in (rate, f"{rate}.0")
        ]
        assert sum(nets) == basis, rate
    assert texts(root, ".//ram:CategoryCode")[-1] in ("S", "Z")


async def test_an_unknown_invoice_has_no_e_invoice(hub: HubClient):
    answer = await hub.http.get("/v1/invoices/INV-2026-000042/e-invoice")
    assert answer.status_code == 404


async def invoiced_xml(hub: HubClient, items: list[dict[str, object]], **changes: object) -> bytes:
    await seller(hub)
    await complete(hub, items=items, **changes)
    _, [invoice] = await finalize(hub)
    answer = await hub.http.get(f"/v1/invoices/{invoice['number']}/e-invoice")
    assert answer.status_code == 200, answer.text
    return answer.content


@pytest.mark.parametrize(
    ("case", "items", "currency"),
    [
        ("20 % (a rate normalize() writes 2E+1)", [item("12.00", vat="20")], "EUR"),
        ("10 %", [item("9.90", vat="10"), item("1.10", vat="10")], "EUR"),
        ("mixed rates", [item("11.99"), item("10.70", vat="7"), item("5", vat="20")], "EUR"),
        ("a negative line", [item("30.00"), item("-4.00"), item("-0.01", vat="7")], "EUR"),
        ("zero rate only", [item("8.00", vat="0"), item("0.50", vat="0")], "EUR"),
        ("zero-decimal JPY, integer quantities", [item("1200", quantity="3")], "JPY"),
        ("JPY, several rates", [item("980", vat="10"), item("1500", vat="8")], "JPY"),
        ("a quantity sent as 1E+3", [item("0.25", quantity="1E+3")], "EUR"),
    ],
)
async def test_e_invoices_obey_the_en_16931_business_rules(
    hub: HubClient, case: str, items: list[dict[str, object]], currency: str
):
    """Each shape of invoice validates against the XSD and fires no EN 16931 Schematron rule,
    and no number in it is written with an exponent."""
    xml = await invoiced_xml(hub, items, currency=currency)
    root = valid(xml)
    numbers = [e.text or "" for e in root.iter() if (e.text or "").strip()[:1] in "-0123456789"]
    assert not [n for n in numbers if "E" in n.upper()], case


async def test_a_memo_becomes_the_invoice_note(hub: HubClient):
    """BT-22: what a charge or bill says in `memo` is the e-invoice's IncludedNote."""
    await seller(hub)
    charge = {"customerNumber": "C-1", "externalContractId": "K-1", "currency": "EUR",
              "billToAddress": {"countryCode": "DE"}, "items": [item("5.00")],
              "memo": "Parking fine, 2026-11-17", "reason": "penalty"}  # fmt: skip
    assert (await post(hub, "/v1/charges", charge)).status_code == 202
    _, [invoice] = await finalize(hub)
    assert invoice["document"]["invoice"]["notes"] == ["Parking fine, 2026-11-17"]
    [source] = invoice["document"]["invoice"]["preliminary"]["billingInformation"]
    assert source["metadata"] == {"reason": "penalty"}
    root = await e_invoice(hub, invoice["number"])
    assert texts(root, ".//rsm:ExchangedDocument/ram:IncludedNote/ram:Content") == [
        "Parking fine, 2026-11-17"
    ]


async def test_a_seller_with_a_legal_registration_and_a_tax_number_is_enough(hub: HubClient):
    """BR-CO-26 and BR-S-02 hold without a VAT id: legal registration id (BT-30) plus tax
    number (BT-32)."""
    seller_ = {"name": "Kleinbetrieb", "countryCode": "DE", "taxNumber": "143/123/45678",
               "legalRegistrationId": "HRB 12345"}  # fmt: skip
    assert (await hub.http.put("/v1/seller", json=seller_)).status_code == 200
    await complete(hub)
    _, [invoice] = await finalize(hub)
    root = await e_invoice(hub, invoice["number"])
    assert texts(root, ".//ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID") == [
        "HRB 12345"
    ]


async def test_three_decimal_currencies_have_no_e_invoice_and_say_why(hub: HubClient):
    """BR-DEC-*: EN 16931 amounts have at most two decimals, so a KWD invoice (three) is a 409
    that names the rule, not a 500 or an invalid document."""
    await seller(hub)
    await complete(hub, currency="KWD", items=[item("1.235")])
    _, [invoice] = await finalize(hub)
    answer = await hub.http.get(f"/v1/invoices/{invoice['number']}/e-invoice")
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "e_invoice_unavailable" and "BR-DEC" in error["message"]


async def test_exponents_in_the_request_are_written_plainly_everywhere(hub: HubClient):
    """`"quantity": 1E+3` and `"vatPercent": 2E+1` are the numbers 1000 and 20: the payload,
    the invoice event and the e-invoice write them so, and the e-invoice is valid."""
    await seller(hub)
    raw = (
        b'{"transactionId": "t-exp", "customerNumber": "C-1", "externalContractId": "K-1",'
        b' "currency": "EUR", "billingStartDate": "2026-11-20", "billingEndDate": "2026-11-20",'
        b' "billToAddress": {"countryCode": "DE"}, "items": [{"productID": "P",'
        b' "description": "kWh", "quantity": 1E+3, "grossUnitPrice": 0.3E0, "vatPercent": 2E+1}]}'
    )
    accepted = await hub.http.post("/v1/usage-completions", content=raw)
    assert accepted.status_code == 202, accepted.text
    assert b'"quantity":1000,' in accepted.content and b'"vatPercent":20,' in accepted.content
    answer = await hub.http.post("/v1/invoices/finalize", json={})
    assert b"E+" not in answer.content.upper() and b'"vatPercent":20' in answer.content
    [invoice] = answer.json()["invoices"]
    root = await e_invoice(hub, invoice["number"])
    assert texts(root, ".//ram:BilledQuantity") == ["1000"]
    assert set(texts(root, ".//ram:RateApplicablePercent")) == {"20"}


async def test_an_amount_of_1e_1000000_is_a_422(hub: HubClient):
    raw = jsoncodec.dumps(completion()).replace(
        b'"grossUnitPrice":11.99', b'"grossUnitPrice":1E+1000000'
    )
    answer = await hub.http.post("/v1/usage-completions", content=raw)
    assert answer.status_code == 422, answer.text
    assert "out of range" in answer.json()["error"]["message"]


async def test_a_seller_with_only_a_tax_number_is_refused_naming_the_rule(hub: HubClient):
    """Every e-invoice of such a seller failed BR-CO-26: PUT /v1/seller now says what EN 16931
    needs, and stores nothing."""
    only_tax = {"name": "S", "countryCode": "DE", "taxNumber": "143/123/45678"}
    answer = await hub.http.put("/v1/seller", json=only_tax)
    assert answer.status_code == 422
    assert "BR-CO-26" in answer.json()["error"]["details"][0]["msg"]
    assert (await hub.http.get("/v1/seller")).status_code == 404


async def test_a_bill_keeps_its_memo_and_metadata_on_the_invoice(hub: HubClient):
    await seller(hub)
    bill = {"customerNumber": "C-1", "externalContractId": "K-1", "productId": "P",
            "currency": "EUR", "billToAddress": {"countryCode": "DE"},
            "oneOffLineItems": [{"description": "Setup", "quantity": 1,
                                 "grossUnitPrice": 49, "vatPercent": 19}],
            "memo": "Setup of wallbox 7",
            "metadata": {"ticket": "T-17", "rank": Decimal("2.50")}, "draft": False}  # fmt: skip
    answer = await post(hub, "/v1/bills", bill)
    assert answer.status_code == 202, answer.text
    assert b'"rank":2.50' in answer.content  # metadata numbers as sent, too
    invoice = answer.json()["invoice"]
    document = invoice["document"]["invoice"]
    assert document["notes"] == ["Setup of wallbox 7"]
    assert document["preliminary"]["billingInformation"][0]["metadata"]["ticket"] == "T-17"
    root = await e_invoice(hub, invoice["number"])
    assert texts(root, ".//rsm:ExchangedDocument/ram:IncludedNote/ram:Content") == [
        "Setup of wallbox 7"
    ]


async def credit_note_xml(
    hub: HubClient, lines: list[dict[str, object]], body: dict[str, object]
) -> bytes:
    await seller(hub)
    await complete(hub, items=lines)
    _, [invoice] = await finalize(hub)
    note = await hub.http.post(
        f"/v1/invoices/{invoice['number']}/credit-notes",
        content=jsoncodec.dumps({"reason": "goodwill", **body}),
    )
    assert note.status_code == 201, note.text
    answer = await hub.http.get(f"/v1/credit-notes/{note.json()['number']}/e-invoice")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/xml"
    return answer.content


@pytest.mark.parametrize(
    ("case", "items", "body"),
    [
        ("a full cancellation with a discount line", [item("30.00"), item("-4.00")], {}),
        ("part of a line", [item("11.99", quantity="3")], {"items": [{"line": 1, "quantity": 1}]}),
        ("an amount", [item("149.95")], {"items": [{"line": 1, "amount": Decimal("5.00")}]}),
        ("mixed rates", [item("11.99"), item("10.70", vat="7"), item("3", vat="0")], {}),
    ],
)
async def test_credit_notes_are_en_16931_credit_notes_referencing_their_invoice(
    hub: HubClient, case: str, items: list[dict[str, object]], body: dict[str, object]
):
    """A credit note is CII TypeCode 381 naming the invoice it corrects (BT-25, with its date
    BT-26), its reason as a note, its totals as credited; XSD-valid and no EN 16931 rule
    fires."""
    root = valid(await credit_note_xml(hub, items, body))
    assert texts(root, ".//rsm:ExchangedDocument/ram:TypeCode") == ["381"], case
    assert texts(root, ".//rsm:ExchangedDocument/ram:ID") == ["CN-2026-000001"]
    assert texts(root, ".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == [
        "INV-2026-000001"
    ]
    assert texts(root, ".//rsm:ExchangedDocument/ram:IncludedNote/ram:Content") == ["goodwill"]
    note = (await hub.http.get("/v1/credit-notes/CN-2026-000001")).json()["document"]
    [total] = texts(root, ".//ram:GrandTotalAmount")
    assert Decimal(total) == Decimal(str(note["creditNote"]["totalGrossAmount"]))


async def test_an_unknown_credit_note_has_no_e_invoice(hub: HubClient):
    answer = await hub.http.get("/v1/credit-notes/CN-2026-000042/e-invoice")
    assert answer.status_code == 404
