"""Finalized invoices: grouping, numbering without gaps (under failure and concurrency), never
invoicing twice, immutability, the rounding contract on invoices, events, automatic runs."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app import jsoncodec
from app.invoicing.service import Filters
from app.store import invoices as invoice_store
from app.testing import FrozenClock, Receiver
from tests.backends import rows
from tests.conftest import START_MS, HubClient
from tests.test_billing import FIXTURES, completion, fixture, post
from tests.test_e2e import Recorder

HOUR = 3600
SELLER = fixture("seller.example.json")


async def seller(hub: HubClient) -> None:
    answer = await hub.http.put(
        "/v1/seller", content=(FIXTURES / "seller.example.json").read_bytes()
    )
    assert answer.status_code == 200, answer.text


async def complete(hub: HubClient, **changes: Any) -> dict[str, Any]:
    answer = await post(hub, "/v1/usage-completions", completion(**changes))
    assert answer.status_code == 202, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def finalize(hub: HubClient, **body: Any) -> tuple[int, list[dict[str, Any]]]:
    answer = await hub.http.post("/v1/invoices/finalize", json=body)
    assert answer.status_code in (200, 201), answer.text
    invoices: list[dict[str, Any]] = answer.json()["invoices"]
    return answer.status_code, invoices


def item(price: str, vat: str = "19", quantity: str = "1", product: str = "P") -> dict[str, Any]:
    return {
        "productID": product,
        "description": f"{product} at {price}",
        "quantity": Decimal(quantity),
        "grossUnitPrice": Decimal(price),
        "vatPercent": Decimal(vat),
    }


async def numbers(hub: HubClient) -> list[str]:
    """The invoice numbers the store holds, read outside the hub."""
    found = await rows(hub.hub.settings.database_url, "SELECT number FROM invoices ORDER BY number")
    return [r[0] for r in found]


async def test_the_seed_example_becomes_one_invoice_with_its_lines_totals_and_links(hub_factory):
    hub: HubClient = await hub_factory(clock=FrozenClock(START_MS))  # 2026-11-18
    await seller(hub)
    accepted = await post(hub, "/v1/usage-completions", fixture("usage-completion.seed.json"))
    status, [invoice] = await finalize(hub)
    assert status == 201
    document = invoice["document"]["invoice"]
    assert invoice["number"] == document["invoiceNumber"] == "INV-2026-000001"
    assert (invoice["status"], invoice["customerNumber"]) == ("finalized", "CUST-3990518")
    assert [(i["grossAmount"], i["netAmount"]) for i in document["items"]] == [
        (11.99, 10.07),
        (-4.0, -3.36),
    ]  # line nets add up to the group's net, 6.71 (not 10.08 − 3.36)
    assert document["vatBreakdown"] == [
        {"grossAmount": 7.99, "netAmount": 6.71, "vatAmount": 1.28, "vatPercent": 19}
    ]
    assert (document["totalGrossAmount"], document["totalNetAmount"]) == (7.99, 6.71)
    [source] = document["preliminary"]["billingInformation"]
    assert (source["transactionId"], source["eventId"]) == (
        "2035676626",
        accepted.json()["event_id"],
    )
    assert document["roundingDifference"] == {"grossAmount": 0.0, "netAmount": 0.0}
    assert document["seller"]["vatId"] == SELLER["vatId"]
    assert document["billToAddress"]["postalPlace"] == "Münster"
    assert (document["invoiceDate"], document["dueDate"]) == ("2026-11-18", "2026-11-18")


async def test_nothing_open_answers_an_empty_list_and_nothing_is_invoiced_twice(hub: HubClient):
    await seller(hub)
    assert await finalize(hub) == (200, [])
    await complete(hub)
    assert len((await finalize(hub))[1]) == 1
    assert await finalize(hub) == (200, [])


async def test_one_invoice_per_customer_contract_and_currency(hub: HubClient):
    await seller(hub)
    await complete(hub, transactionId="a")
    await complete(hub, transactionId="b")  # same customer and contract: the same invoice
    await complete(hub, transactionId="c", externalContractId="K-2")
    await complete(hub, transactionId="d", currency="CHF")
    await complete(hub, transactionId="e", customerNumber="C-2")
    _, invoices = await finalize(hub)
    groups = sorted(
        (
            i["customerNumber"],
            i["externalContractId"],
            i["currency"],
            [
                t["transactionId"]
                for t in i["document"]["invoice"]["preliminary"]["billingInformation"]
            ],
        )
        for i in invoices
    )
    assert groups == [
        ("C-1", "K-1", "CHF", ["d"]),
        ("C-1", "K-1", "EUR", ["a", "b"]),
        ("C-1", "K-2", "EUR", ["c"]),
        ("C-2", "K-1", "EUR", ["e"]),
    ]
    assert sorted(i["number"] for i in invoices) == [f"INV-2026-00000{n}" for n in range(1, 5)]


async def test_filters_select_what_is_finalized(hub: HubClient):
    await seller(hub)
    await complete(hub, transactionId="a")
    await complete(hub, transactionId="b", customerNumber="C-2")
    _, invoices = await finalize(hub, customerNumber="C-2")
    assert [i["customerNumber"] for i in invoices] == ["C-2"]
    _, invoices = await finalize(hub, up_to="2020-01-01")  # nothing that old
    assert invoices == []


async def test_the_rounding_contract_on_the_invoice_and_the_cent_difference_stated(
    hub: HubClient,
):
    """Three preliminary documents of 0.333 each are 0.33 apiece (0.99); the invoice rounds
    the sum once, 1.00, and says so. Mixed rates are grouped and rounded each on their own."""
    await seller(hub)
    for n in range(3):
        await complete(hub, transactionId=f"t{n}", items=[item("0.333")])
    await complete(hub, transactionId="food", items=[item("10.70", vat="7")])
    _, [invoice] = await finalize(hub)
    document = invoice["document"]["invoice"]
    assert document["preliminary"]["totalGrossAmount"] == 0.99 + 10.70
    assert document["totalGrossAmount"] == 11.70
    assert document["roundingDifference"]["grossAmount"] == 0.01
    breakdown = {
        g["vatPercent"]: (g["grossAmount"], g["netAmount"]) for g in document["vatBreakdown"]
    }
    assert breakdown == {7: (10.70, 10.00), 19: (1.00, 0.84)}
    nets = [i["netAmount"] for i in document["items"] if i["vatPercent"] == 19]
    assert sum(Decimal(str(n)) for n in nets) == Decimal("0.84")  # lines add up to the group


async def test_finalization_is_notified_as_an_event(hub: HubClient):
    await seller(hub)
    recorder = Recorder()
    async with Receiver(recorder.app, "/hook") as server:
        created = await hub.endpoint(server.url, event_types=["invoices/invoiceFinalized"])
        recorder.secret = created["secret"]
        await complete(hub)
        _, [invoice] = await finalize(hub)
        await hub.drain()
    [received] = recorder.requests  # the signature was verified by standardwebhooks
    assert received["payload"]["type"] == "invoices/invoiceFinalized"
    assert received["headers"]["webhook-id"] == invoice["event_id"]
    stored = await hub.http.get(f"/v1/invoices/{invoice['number']}")
    document = jsoncodec.loads(stored.content)["document"]
    assert jsoncodec.loads(received["body"])["parameters"] == document


async def test_a_failure_half_way_consumes_no_number(hub: HubClient, monkeypatch, tmp_path: Path):
    """The second of three groups fails after its number was drawn: the first invoice stays,
    the failed one leaves no trace, and the next run numbers on without a gap."""
    await seller(hub)
    for customer in ("C-1", "C-2", "C-3"):
        await complete(hub, transactionId=customer, customerNumber=customer)
    real, calls = invoice_store.insert_events, []

    async def flaky(tx: Any, batch: Any, existing: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return await real(tx, batch, existing)

    monkeypatch.setattr(invoice_store, "insert_events", flaky)
    with pytest.raises(RuntimeError):
        await hub.hub.invoices.finalize(await _tenant(hub), Filters())
    assert await numbers(hub) == ["INV-2026-000001"]
    _, invoices = await finalize(hub)
    assert await numbers(hub) == [f"INV-2026-00000{n}" for n in (1, 2, 3)]
    assert len(invoices) == 2


async def test_concurrent_finalizations_number_without_gaps_and_invoice_once(
    hub: HubClient, tmp_path: Path
):
    await seller(hub)
    for n in range(12):
        await complete(hub, transactionId=f"t{n}", customerNumber=f"C-{n % 6}")
    results = await asyncio.gather(*(finalize(hub) for _ in range(4)))
    made = [i for _, invoices in results for i in invoices]
    assert sorted(i["number"] for i in made) == [f"INV-2026-{n:06d}" for n in range(1, 7)]
    assert await numbers(hub) == sorted(i["number"] for i in made)
    sources = [
        s["transactionId"]
        for i in made
        for s in i["document"]["invoice"]["preliminary"]["billingInformation"]
    ]
    assert sorted(sources) == sorted(f"t{n}" for n in range(12))  # each exactly once


async def test_two_finalizations_racing_for_the_same_group_make_one_invoice(hub: HubClient):
    await seller(hub)
    await complete(hub)
    first, second = await asyncio.gather(finalize(hub), finalize(hub))
    assert sorted([len(first[1]), len(second[1])]) == [0, 1]


async def test_without_seller_details_finalization_is_refused(hub: HubClient):
    await complete(hub)
    answer = await hub.http.post("/v1/invoices/finalize", json={})
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "seller_missing"
    assert (await hub.http.get("/v1/seller")).status_code == 404


async def test_the_store_refuses_to_change_or_delete_an_invoice(hub: HubClient, tmp_path: Path):
    await seller(hub)
    await complete(hub)
    _, [invoice] = await finalize(hub)
    url = hub.hub.settings.database_url
    with pytest.raises(Exception, match="immutable"):  # sqlite3 or asyncpg: the trigger's word
        await rows(url, "UPDATE invoices SET total_gross = '0.00'")
    with pytest.raises(Exception, match="never deleted"):
        await rows(url, "DELETE FROM invoices")
    for method in ("PATCH", "PUT", "DELETE"):
        answer = await hub.http.request(method, f"/v1/invoices/{invoice['number']}", json={})
        assert answer.status_code == 405
    same = (await hub.http.get(f"/v1/invoices/{invoice['number']}")).json()
    assert same["document"] == invoice["document"]


async def test_automatic_finalization_after_the_grace_period(hub_factory):
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, finalize_after=24 * HOUR)

    async def run_after(hours: int) -> list[str]:
        clock.advance(hours * HOUR)
        await hub.hub.periodic.run_once()
        listed = (await hub.http.get("/v1/invoices")).json()["data"]
        return sorted(i["customerNumber"] for i in listed)

    await complete(hub)  # C-1; there are no seller details yet
    assert await run_after(25) == []  # due, but an invoice needs its issuer: left open
    await seller(hub)
    await complete(hub, transactionId="later", customerNumber="C-2")
    assert await run_after(23) == ["C-1"]  # C-2's item is 23 h old: not yet
    assert await run_after(2) == ["C-1", "C-2"]


async def test_a_bill_with_draft_false_is_finalized_at_once(hub: HubClient):
    await seller(hub)
    bill = {
        "customerNumber": "C-9",
        "externalContractId": "K-9",
        "productId": "fee",
        "currency": "EUR",
        "billToAddress": completion()["billToAddress"],
        "oneOffLineItems": [
            {"description": "Setup fee", "quantity": 1, "grossUnitPrice": 25, "vatPercent": 19}
        ],
        "draft": False,
    }
    answer = await post(hub, "/v1/bills", bill)
    assert answer.status_code == 202, answer.text
    invoice = answer.json()["invoice"]
    assert invoice["number"] == "INV-2026-000001"
    assert invoice["document"]["invoice"]["totalGrossAmount"] == 25
    assert await finalize(hub) == (200, [])  # nothing left open


async def _tenant(hub: HubClient) -> str:
    found = await hub.hub.store.tenants.by_name("default")
    assert found is not None
    return found.id


async def test_bad_invoice_requests_are_4xx_and_change_nothing(hub: HubClient, tmp_path: Path):
    await seller(hub)
    await complete(hub)
    cases = [
        ("post", "/v1/invoices/finalize", {"customer": "C-1"}, 422),  # unknown field
        ("post", "/v1/invoices/finalize", {"up_to": "soon-ish-x"}, 422),
        ("post", "/v1/invoices/finalize", {"customerNumber": 7}, 422),
        ("get", "/v1/invoices?status=paid", None, 422),
        ("get", "/v1/invoices/INV-2026-000404", None, 404),
        ("get", "/v1/credit-notes/CN-2026-000404", None, 404),
        ("put", "/v1/seller", {"name": "S", "countryCode": "DE"}, 422),  # no VAT id or tax no.
        ("put", "/v1/seller", {"name": "S", "countryCode": "Germany", "vatId": "DE1"}, 422),
    ]
    for method, path, body, status in cases:
        answer = await hub.http.request(method, path, json=body)
        assert answer.status_code == status, (path, body, answer.text)
        assert set(answer.json()["error"]) == {"code", "message", "details"}
    assert await numbers(hub) == []
    assert (await hub.http.get("/v1/seller")).json()["vatId"] == SELLER["vatId"]


async def test_finalizations_racing_from_two_processes_stay_gapless(hub_factory):
    """Two hubs on one database (two processes on PostgreSQL) finalize at once: numbers come
    from a counter row locked in the finalizing transaction, so they stay gapless, and every
    billing information is invoiced exactly once."""
    one, two = await hub_factory(), await hub_factory()
    await seller(one)
    for n in range(12):
        await complete(one, transactionId=f"t{n}", customerNumber=f"C-{n % 6}")
    results = await asyncio.gather(*(finalize(h) for h in (one, two) * 3))
    made = [i for _, invoices in results for i in invoices]
    assert sorted(i["number"] for i in made) == [f"INV-2026-{n:06d}" for n in range(1, 7)]
    assert await numbers(one) == sorted(i["number"] for i in made)
    sources = [s["transactionId"] for i in made
               for s in i["document"]["invoice"]["preliminary"]["billingInformation"]]  # fmt: skip
    assert sorted(sources) == sorted(f"t{n}" for n in range(12))


async def test_credit_notes_racing_from_two_processes_never_exceed_the_invoice(hub_factory):
    """Each credit note reads the invoice's earlier ones: the invoice row is locked while it
    does, so six notes of 2.00 racing from two hubs on a 10.00 invoice make exactly five."""
    one, two = await hub_factory(), await hub_factory()
    await seller(one)
    await complete(one, items=[item("10.00")])
    _, [invoice] = await finalize(one)
    body = jsoncodec.dumps({"items": [{"line": 1, "amount": Decimal("2.00")}], "reason": "r"})
    answers = await asyncio.gather(*(
        h.http.post(f"/v1/invoices/{invoice['number']}/credit-notes", content=body)
        for h in (one, two) * 3
    ))  # fmt: skip
    assert sorted(a.status_code for a in answers) == [201] * 5 + [409]
    state = (await one.http.get(f"/v1/invoices/{invoice['number']}")).json()
    assert (state["status"], state["creditedAmount"]) == ("credited", 10.0)
    numbers_ = sorted(a.json()["number"] for a in answers if a.status_code == 201)
    assert numbers_ == [f"CN-2026-{n:06d}" for n in range(1, 6)]  # no gap from the refusal
