"""The e-invoice: EN 16931 CII XML (Factur-X profile EN16931) that validates against the
profile's XSD, with BR-27 prices and line nets that add up to each VAT group."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import drafthorse
from lxml import etree

from app.testing import FrozenClock
from tests.conftest import START_MS, HubClient
from tests.test_billing import fixture, post
from tests.test_invoices import complete, finalize, item, seller

XSD = Path(drafthorse.__file__).parent / "schema" / "Factur-X_1.0.07_EN16931.xsd"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}


def valid(xml: bytes) -> etree._Element:
    """Parsed and checked against the official XSD (independently of drafthorse's own check)."""
    schema = etree.XMLSchema(file=str(XSD))
    root = etree.fromstring(xml)
    schema.assertValid(root)
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
    assert texts(root, f"{line}//ram:BilledQuantity") == ["1.0", "-1.0"]
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
