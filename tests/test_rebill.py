"""Rebills (Aria's gen_rb): a full credit note of an invoice and a new invoice with corrected
lines, written together, linked both ways, both notified."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app import jsoncodec
from tests.backends import rows
from tests.conftest import HubClient
from tests.test_einvoice import texts, valid
from tests.test_invoices import complete, finalize, item, seller

CORRECTED = [item("9.99"), item("-1.00")]


async def invoiced(hub: HubClient) -> dict[str, Any]:
    await seller(hub)
    await complete(hub, items=[item("11.99"), item("-4.00")])
    _, [invoice] = await finalize(hub)
    return invoice


async def rebill(hub: HubClient, number: str, **body: Any) -> Any:
    payload = {"reason": "wrong tariff", "items": CORRECTED, **body}
    return await hub.http.post(f"/v1/invoices/{number}/rebill", content=jsoncodec.dumps(payload))


async def test_a_rebill_credits_the_invoice_and_reissues_it_linked_both_ways(hub: HubClient):
    original = await invoiced(hub)
    answer = await rebill(hub, original["number"])
    assert answer.status_code == 201, answer.text
    note, new = answer.json()["creditNote"], answer.json()["invoice"]
    assert (note["number"], new["number"]) == ("CN-2026-000001", "INV-2026-000002")
    assert note["totalGrossAmount"] == original["totalGrossAmount"]  # credited in full
    assert note["document"]["creditNote"]["rebilledBy"] == new["number"]
    document = new["document"]["invoice"]
    assert document["rebillOf"] == {
        "invoiceNumber": original["number"],
        "invoiceDate": original["invoiceDate"],
        "creditNoteNumber": note["number"],
    }
    assert (document["totalGrossAmount"], document["totalNetAmount"]) == (8.99, 7.55)
    assert [line["grossUnitPrice"] for line in document["items"]] == [9.99, -1.0]
    assert document["billToAddress"] == original["document"]["invoice"]["billToAddress"]
    assert document["notes"] == [
        f"Replaces invoice {original['number']} ({note['number']}): wrong tariff"
    ]
    again = (await hub.http.get(f"/v1/invoices/{original['number']}")).json()
    assert (again["status"], again["rebilledBy"], again["creditNotes"]) == (
        "credited",
        new["number"],
        [note["number"]],
    )
    types = [e["type"] for e in (await hub.http.get("/v1/events")).json()["data"]]
    assert types[:2] == ["invoices/invoiceFinalized", "invoices/creditNoteCreated"]
    xml = (await hub.http.get(f"/v1/invoices/{new['number']}/e-invoice")).content
    root = valid(xml)  # the new invoice names the one it replaces (BT-25)
    assert texts(root, ".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == [
        original["number"]
    ]


async def test_a_refused_rebill_writes_nothing_and_uses_no_number(hub: HubClient):
    """A negative corrected total (422), an invoice credited in full already (409) or an
    unknown invoice (404): no credit note, no invoice, no number drawn."""
    original = await invoiced(hub)
    negative = await rebill(hub, original["number"], items=[item("-5.00")])
    assert negative.status_code == 422, negative.text
    assert (await rebill(hub, "INV-2026-000099")).status_code == 404
    assert (await rebill(hub, original["number"], items=[])).status_code == 422
    full = await hub.http.post(
        f"/v1/invoices/{original['number']}/credit-notes", json={"reason": "cancelled"}
    )
    assert full.status_code == 201
    twice = await rebill(hub, original["number"])
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "credit_exceeds_invoice"
    database = hub.hub.settings.database_url
    assert await rows(database, "SELECT number FROM invoices") == [(original["number"],)]
    assert await rows(database, "SELECT number FROM credit_notes") == [("CN-2026-000001",)]
    await complete(hub, transactionId="t-2")
    _, [following] = await finalize(hub)
    assert following["number"] == "INV-2026-000002"  # no number was used by the refusals


async def test_a_partly_credited_invoice_is_rebilled_for_what_remains(hub: HubClient):
    original = await invoiced(hub)
    part = await hub.http.post(
        f"/v1/invoices/{original['number']}/credit-notes",
        content=jsoncodec.dumps({"reason": "goodwill", "items": [{"line": 1, "amount": 2}]}),
    )
    assert part.status_code == 201
    answer = await rebill(hub, original["number"])
    assert answer.status_code == 201, answer.text
    note = answer.json()["creditNote"]
    assert Decimal(str(note["totalGrossAmount"])) == Decimal("5.99")  # 7.99 − 2.00
