"""Credit notes: the only correction of a finalized invoice — partial (lines, quantities,
amounts) or full, numbered in their own series, never exceeding the invoice."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app import jsoncodec
from app.invoicing import documents
from app.invoicing.documents import Credit
from tests.conftest import HubClient
from tests.test_invoices import complete, finalize, item, seller


async def invoiced(hub: HubClient, items: list[dict[str, Any]]) -> dict[str, Any]:
    await seller(hub)
    await complete(hub, items=items)
    _, [invoice] = await finalize(hub)
    return invoice


async def credit(hub: HubClient, number: str, **body: Any) -> Any:
    return await hub.http.post(
        f"/v1/invoices/{number}/credit-notes",
        content=jsoncodec.dumps({"reason": "goodwill", **body}),
    )


def amounts(note: dict[str, Any]) -> tuple[Decimal, Decimal]:
    document = jsoncodec.loads(jsoncodec.dumps(note["document"]))["creditNote"]
    return Decimal(str(document["totalGrossAmount"])), Decimal(str(document["totalNetAmount"]))


async def test_partial_then_full_credit_notes_add_up_to_the_invoice_exactly(hub: HubClient):
    invoice = await invoiced(
        hub, [item("11.99"), item("0.29", quantity="42", product="minutes"), item("-4.00")]
    )
    number = invoice["number"]  # 11.99 + 12.18 − 4.00 = 20.17 gross, net 16.95
    by_quantity = await credit(hub, number, items=[{"line": 2, "quantity": 10}])
    assert by_quantity.status_code == 201, by_quantity.text
    first = by_quantity.json()
    assert (first["number"], first["invoiceNumber"]) == ("CN-2026-000001", number)
    assert amounts(first) == (Decimal("2.90"), Decimal("2.44"))

    by_amount = await credit(hub, number, items=[{"line": 1, "amount": 1.99}])
    assert by_amount.status_code == 201 and by_amount.json()["number"] == "CN-2026-000002"
    state = (await hub.http.get(f"/v1/invoices/{number}")).json()
    assert (state["status"], state["creditedAmount"]) == ("partially_credited", 4.89)

    rest = await credit(hub, number)  # no items: cancel everything that remains
    assert rest.status_code == 201, rest.text
    notes = [first, by_amount.json(), rest.json()]
    gross = sum((amounts(n)[0] for n in notes), Decimal(0))
    net = sum((amounts(n)[1] for n in notes), Decimal(0))
    document = invoice["document"]["invoice"]
    assert (gross, net) == (
        Decimal(str(document["totalGrossAmount"])),
        Decimal(str(document["totalNetAmount"])),
    )
    state = (await hub.http.get(f"/v1/invoices/{number}")).json()
    assert state["status"] == "credited"
    assert state["creditNotes"] == ["CN-2026-000001", "CN-2026-000002", "CN-2026-000003"]
    listed = (await hub.http.get("/v1/invoices?status=credited")).json()["data"]
    assert [i["number"] for i in listed] == [number]


async def test_a_full_cancellation_mirrors_the_invoice(hub: HubClient):
    invoice = await invoiced(hub, [item("11.99"), item("-4.00"), item("10.70", vat="7")])
    answer = await credit(hub, invoice["number"])
    assert answer.status_code == 201, answer.text
    note = answer.json()["document"]["creditNote"]
    document = invoice["document"]["invoice"]
    assert note["vatBreakdown"] == document["vatBreakdown"]
    assert [(i["lineNumber"], i["grossAmount"]) for i in note["items"]] == [
        (i["lineNumber"], i["grossAmount"]) for i in document["items"]
    ]
    again = await credit(hub, invoice["number"])
    assert again.status_code == 409  # nothing remains


async def test_credits_above_what_remains_are_refused_and_write_nothing(hub: HubClient):
    invoice = await invoiced(hub, [item("11.99"), item("-4.00")])  # 7.99
    number = invoice["number"]
    too_much = await credit(hub, number, items=[{"line": 1, "amount": 12.00}])
    assert too_much.status_code == 409
    assert too_much.json()["error"]["code"] == "credit_exceeds_invoice"
    # All of line 1 alone would be 11.99: more than the whole invoice (7.99).
    whole_line = await credit(hub, number, items=[{"line": 1}])
    assert whole_line.status_code == 409
    only_discount = await credit(hub, number, items=[{"line": 2}])
    assert only_discount.status_code == 422  # it would raise what the customer owes
    ok = await credit(hub, number, items=[{"line": 1, "amount": 7.99}])
    assert ok.status_code == 201 and ok.json()["number"] == "CN-2026-000001"  # no gap
    more = await credit(hub, number, items=[{"line": 1, "amount": 0.01}])
    assert more.status_code == 409


async def test_bad_credit_note_requests(hub: HubClient):
    invoice = await invoiced(hub, [item("11.99")])
    number = invoice["number"]
    cases = [
        ("unknown invoice", "INV-2026-999999", {"items": [{"line": 1}]}, 404),
        ("unknown line", number, {"items": [{"line": 7}]}, 422),
        ("line 0", number, {"items": [{"line": 0}]}, 422),
        ("both measures", number, {"items": [{"line": 1, "quantity": 1, "amount": 1}]}, 422),
        ("negative amount", number, {"items": [{"line": 1, "amount": -1}]}, 422),
        ("more units than billed", number, {"items": [{"line": 1, "quantity": 2}]}, 422),
        (
            "a line twice",
            number,
            {"items": [{"line": 1, "amount": 1}, {"line": 1, "amount": 1}]},
            422,
        ),
        ("no reason", number, {"reason": None}, 422),
        ("finer than a cent", number, {"items": [{"line": 1, "amount": Decimal("0.005")}]}, 422),
        ("empty items", number, {"items": []}, 422),
    ]
    for name, target, body, status in cases:
        answer = await credit(hub, target, **body)
        assert answer.status_code == status, (name, answer.text)
        assert set(answer.json()["error"]) == {"code", "message", "details"}, name
    assert (await hub.http.get(f"/v1/invoices/{number}")).json()["creditNotes"] == []


async def test_a_credit_note_is_notified(hub: HubClient):
    invoice = await invoiced(hub, [item("11.99")])
    answer = await credit(hub, invoice["number"])
    event = (await hub.http.get(f"/v1/events/{answer.json()['event_id']}")).json()
    assert event["type"] == "invoices/creditNoteCreated"
    stored = (await hub.http.get(f"/v1/credit-notes/{answer.json()['number']}")).json()
    assert stored["document"]["creditNote"]["reason"] == "goodwill"


async def test_crediting_a_line_unit_by_unit_adds_up_to_the_line(hub: HubClient):
    """3 × 0.335 is billed 1.01. One unit at a time was 0.34, 0.34, then a refusal ("only 0.33
    remains"). Units are priced by running rounding — round(units so far × price) minus what
    the earlier units took — so the notes are 0.34, 0.33, 0.34 and add up to the line."""
    invoice = await invoiced(hub, [item("0.335", quantity="3")])
    number = invoice["number"]
    credited = []
    for _ in range(3):
        answer = await credit(hub, number, items=[{"line": 1, "quantity": 1}])
        assert answer.status_code == 201, answer.text
        credited.append(amounts(answer.json())[0])
    assert credited == [Decimal("0.34"), Decimal("0.33"), Decimal("0.34")]
    state = (await hub.http.get(f"/v1/invoices/{number}")).json()
    assert (state["status"], state["creditedAmount"]) == ("credited", 1.01)
    more = await credit(hub, number, items=[{"line": 1, "quantity": 1}])
    assert more.status_code == 409


async def test_an_amount_finer_than_the_minor_unit_is_refused_and_writes_nothing(hub: HubClient):
    """`amount: 0.005` was a 201 that then counted as nothing credited: the invoice showed
    partially_credited 27.00 of 27.01 after it was credited in full."""
    invoice = await invoiced(hub, [item("27.01")])
    refused = await credit(hub, invoice["number"], items=[{"line": 1, "amount": Decimal("0.005")}])
    assert refused.status_code == 422 and "decimals" in refused.json()["error"]["message"]
    assert (await credit(hub, invoice["number"])).status_code == 201
    state = (await hub.http.get(f"/v1/invoices/{invoice['number']}")).json()
    assert (state["status"], state["creditedAmount"]) == ("credited", 27.01)


SPLITS = st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    price=st.decimals(min_value="0.01", max_value="99", places=3),
    quantity=st.integers(min_value=1, max_value=12),
    splits=SPLITS,
    closing_by_rest=st.booleans(),
)
def test_a_line_credited_in_any_split_of_units_adds_up_exactly(
    price: Decimal, quantity: int, splits: list[int], closing_by_rest: bool
):
    """However the units of a line are split into credit notes (and whether the last one names
    its units or just takes the rest), the notes add up to the line's gross and the invoice's
    net exactly, and none of them is refused. (Below a cent per unit a single unit can round
    to nothing, which is refused as no credit at all.)"""
    invoice_ = documents.invoice(HEAD, [_source(price, quantity)], 2)
    line = invoice_["invoice"]["items"][0]
    notes: list[dict[str, Any]] = []
    left = quantity
    for part in splits:
        if left == 0:
            break
        units = min(part, left)
        left -= units
        credits = None if left == 0 and closing_by_rest else [Credit(1, Decimal(units))]
        notes.append(documents.credit_note(HEAD, invoice_, notes, credits, "r", 2))
    if left:
        notes.append(documents.credit_note(HEAD, invoice_, notes, None, "r", 2))
    gross = sum((n["creditNote"]["totalGrossAmount"] for n in notes), Decimal(0))
    net = sum((n["creditNote"]["totalNetAmount"] for n in notes), Decimal(0))
    assert gross == line["grossAmount"]
    assert net == invoice_["invoice"]["totalNetAmount"]


HEAD = documents.Head("N-1", date(2026, 11, 30), {"name": "S"})


def _source(price: Decimal, quantity: int) -> documents.Source:
    item_ = {"description": "d", "grossUnitPrice": price, "quantity": Decimal(quantity),
             "vatPercent": Decimal(19), "productID": "P", "externalContractId": "K"}  # fmt: skip
    invoice_ = {"items": [item_], "billToAddress": {}, "shipToAddress": {}, "currency": "EUR",
                "billingStartDate": "2026-11-01", "billingEndDate": "2026-11-30",
                "invoiceDate": "2026-11-30", "dueDate": "2026-12-30", "invoiceReference": "PRE-1",
                "totalGrossAmount": Decimal(0), "totalNetAmount": Decimal(0)}  # fmt: skip
    parameters = {"invoice": invoice_, "orderReference": None, "customerNumber": "C",
                  "externalContractId": "K"}  # fmt: skip
    return documents.Source("bi_1", "t", "evt_1", parameters)
