"""The billing lifecycle where operations meet, each case once as an example (the stateful
test, tests/test_lifecycle_stateful.py, generates the rest): a second change or a cancellation
in an invoiced period, a change that cannot be applied, one-off items in arrears, an anchor
far after the start, an amount written with a trailing zero, and the webhooks a queued change
sends."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from app.billing import applying
from tests.conftest import API_KEY, HubClient
from tests.console import ConsoleBrowser
from tests.test_billing import ADDRESS, at, post
from tests.test_invoices import seller
from tests.test_subscription_changes import (
    change,
    events,
    info,
    model,
    plan,
    started,
    subscribe,
)


async def owed(hub: HubClient, customer: str = "C-1") -> Decimal:
    """Σ invoices − Σ credit notes of the customer, from the API."""
    invoices = (await hub.http.get(f"/v1/invoices?customerNumber={customer}")).json()["data"]
    return sum(
        (Decimal(str(i["totalGrossAmount"])) - Decimal(str(i["creditedAmount"])) for i in invoices),
        Decimal(0),
    )


@pytest.mark.parametrize("first", ["prorate", "invoice_now"])
async def test_a_cancellation_after_an_upgrade_in_an_invoiced_period(hub_factory, first: str):
    """Upgrade now, then cancel now, in a period invoiced at once: the cancellation's credit was
    taken from the period's original invoice, which the upgrade had mostly credited already
    (`CreditRefused: line 1: only 2.90 remains`, a 500). It is now taken from what the period
    was billed by: what is left of the invoice and the upgrade's own charge."""
    hub, clock = await started(hub_factory)
    await seller(hub)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, basic, draft=False)  # February invoiced: 30.00
    clock.now = at("2024-02-15T09:00:00+01:00").now  # 15 of 29 days left
    upgraded = await change(hub, sub["id"], priceModelId=pro, effective="now", proration=first)
    assert upgraded.status_code == 201, upgraded.text  # credit 15.52, charge 25.86
    clock.now = at("2024-02-20T09:00:00+01:00").now  # 10 days left
    cancelled = await change(hub, sub["id"], "cancel", effective="now")
    assert cancelled.status_code == 201, cancelled.text
    assert cancelled.json()["change"]["status"] == "applied"
    # Pro's unused 10 days: 50 × 10 / 29 = 17.24, taken from the upgrade's charge (25.86).
    await hub.http.post("/v1/invoices/finalize", json={})
    assert await owed(hub) == Decimal("30.00") - Decimal("15.52") + Decimal("25.86") - Decimal(
        "17.24"
    )


async def test_two_upgrades_the_same_day_in_an_invoiced_period(hub_factory):
    hub, clock = await started(hub_factory)
    await seller(hub)
    basic = await model(hub, plan("Basic", "30.00"))
    pro = await model(hub, plan("Pro", "50.00"))
    top = await model(hub, plan("Top", "90.00"))
    sub = await subscribe(hub, basic, draft=False)
    clock.now = at("2024-02-15T09:00:00+01:00").now
    for target in (pro, top):
        answer = await change(hub, sub["id"], priceModelId=target, effective="now")
        assert answer.status_code == 201, answer.text
    await hub.http.post("/v1/invoices/finalize", json={})
    # 30 − 15.52 + 25.86 − 25.86 + 46.55 (90 × 15 / 29)
    assert await owed(hub) == Decimal("30.00") - Decimal("15.52") + Decimal("46.55")


async def test_a_credit_is_never_more_than_what_the_period_still_owes(hub_factory):
    """A credit note of the whole period first, then a cancellation now: nothing is left to
    credit, so nothing is (it used to fail, or would have credited money never billed)."""
    hub, clock = await started(hub_factory)
    await seller(hub)
    basic = await model(hub, plan("Basic", "30.00"))
    sub = await subscribe(hub, basic, draft=False)
    note = await post(hub, "/v1/invoices/INV-2024-000001/credit-notes", {"reason": "goodwill"})
    assert note.status_code == 201, note.text
    clock.now = at("2024-02-15T09:00:00+01:00").now
    cancelled = await change(hub, sub["id"], "cancel", effective="now")
    assert cancelled.status_code == 201, cancelled.text
    assert cancelled.json()["change"]["result"]["creditNotes"] == []
    assert await owed(hub) == Decimal(0)


async def test_a_change_that_fails_at_its_date_ends_failed_and_never_blocks_the_cycle(
    hub_factory, monkeypatch: pytest.MonkeyPatch
):
    """A change that answered 500 stayed `queued`, retried on every poll forever, and held
    every later cycle of its subscription. Now it ends `failed` with the reason, an
    operational event says so, and the cycle is billed."""
    hub, clock = await started(hub_factory)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    watcher = await hub.endpoint(
        "http://127.0.0.1:9/ops", event_types=["subscription.change.failed"]
    )
    sub = await subscribe(hub, pro)
    queued = (await change(hub, sub["id"], priceModelId=basic)).json()["change"]
    assert (queued["status"], queued["effectiveDate"]) == ("queued", "2024-03-01")

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug while applying")

    monkeypatch.setattr(applying.ChangeApplier, "_written", broken)
    clock.now = at("2024-03-01T00:30:00+01:00").now
    await hub.hub.periodic.run_once()
    failed = await hub.http.get(f"/v1/subscriptions/{sub['id']}/changes/{queued['id']}")
    assert failed.json()["status"] == "failed"
    assert "a bug while applying" in failed.json()["result"]["error"]
    march = await info(hub, f"{sub['id']}:2024-03-01")  # the cycle was not held
    assert march["parameters"]["invoice"]["totalGrossAmount"] == 50  # Pro: it never changed
    [notice] = await events(hub, "subscription.change.failed")
    assert notice["parameters"]["changeId"] == queued["id"]
    sent = (await hub.http.get(f"/v1/events/{notice['id']}")).json()["deliveries"]
    assert [d["endpoint_id"] for d in sent] == [watcher["id"]]
    assert (await hub.hub.periodic.run_once()).get("subscription-changes") == 0


async def test_a_change_that_fails_in_its_request_stores_nothing(
    hub_factory, monkeypatch: pytest.MonkeyPatch
):
    hub, clock = await started(hub_factory)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, basic)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug while applying")

    monkeypatch.setattr(applying.ChangeApplier, "_written", broken)
    clock.now = at("2024-02-15T09:00:00+01:00").now
    with pytest.raises(RuntimeError):  # the ASGI transport raises what the app would 500 with
        await change(hub, sub["id"], priceModelId=pro, effective="now")
    listed = (await hub.http.get(f"/v1/subscriptions/{sub['id']}/changes")).json()["data"]
    assert listed == []  # no change left `queued` to be retried forever
    monkeypatch.undo()
    clock.now = at("2024-03-01T00:30:00+01:00").now
    await hub.hub.periodic.run_once()
    assert (await info(hub, f"{sub['id']}:2024-03-01"))["status"] == "draft"


async def test_one_off_items_are_billed_once_in_arrears_whatever_the_changes(hub_factory):
    """In arrears with oneOffLineItems, a change now billed them with the change's partial
    cycle and again with the next (cyclesBilled stayed 0)."""
    hub, clock = await started(hub_factory)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    setup = {"description": "Setup", "quantity": 1, "grossUnitPrice": Decimal("9.99"),
             "vatPercent": 19}  # fmt: skip
    sub = await subscribe(hub, basic, billInArrears=True, oneOffLineItems=[setup])
    clock.now = at("2024-02-15T09:00:00+01:00").now
    answer = await change(hub, sub["id"], priceModelId=pro, effective="now")
    assert answer.status_code == 201, answer.text
    assert answer.json()["subscription"]["cyclesBilled"] == 1
    clock.now = at("2024-03-02T00:30:00+01:00").now
    await hub.hub.periodic.run_once()
    listed = (await hub.http.get("/v1/billing-information?limit=100")).json()["data"]
    setups = [
        item
        for found in listed
        for item in found["parameters"]["invoice"]["items"]
        if item["description"] == "Setup"
    ]
    assert len(setups) == 1


async def test_an_anchor_more_than_a_period_after_the_start_is_a_stub_and_full_periods(
    hub_factory,
):
    """`billingCycleAnchor` 42 days after `contractStart` was a 500 ("42 days is not a part
    of a 31-day period"): the first period is the stub to the first boundary aligned with the
    anchor, then full periods up to the anchor and on."""
    hub, clock = await started(hub_factory, "2024-01-01T10:00:00+01:00")
    basic = await model(hub, plan("Basic", "31.00"))
    sub = await subscribe(hub, basic, contractStart="2024-01-01", billingCycleAnchor="2024-02-12")
    first = await info(hub, f"{sub['id']}:2024-01-01")
    invoice = first["parameters"]["invoice"]
    assert (invoice["billingStartDate"], invoice["billingEndDate"]) == ("2024-01-01", "2024-01-11")
    assert invoice["totalGrossAmount"] == 11  # 11 of the 31 days of Dec 12 – Jan 12
    clock.now = at("2024-01-12T00:30:00+01:00").now
    await hub.hub.periodic.run_once()
    second = (await info(hub, f"{sub['id']}:2024-01-12"))["parameters"]["invoice"]
    assert (second["billingEndDate"], second["totalGrossAmount"]) == ("2024-02-11", 31)


async def test_an_amount_is_judged_by_its_value_not_how_it_was_written(hub: HubClient):
    """`amount: 0.010` was refused as "more than 2 decimals": it is 0.01."""
    await seller(hub)
    charge = {"customerNumber": "C-1", "currency": "EUR", "billToAddress": ADDRESS, "items": [
        {"productID": "P", "description": "d", "quantity": 1, "grossUnitPrice": Decimal("10"),
         "vatPercent": 19}]}  # fmt: skip
    assert (await post(hub, "/v1/charges", charge)).status_code == 202
    [invoice] = (await hub.http.post("/v1/invoices/finalize", json={})).json()["invoices"]
    credit = {"reason": "r", "items": [{"line": 1, "amount": Decimal("0.010")}]}
    note = await post(hub, f"/v1/invoices/{invoice['number']}/credit-notes", credit)
    assert note.status_code == 201, note.text
    assert note.json()["totalGrossAmount"] == 0.01
    price = plan("Odd", "12.340")  # a fee in whole cents, written with a trailing zero
    assert (await post(hub, "/v1/price-models", price)).status_code == 201


async def test_a_queued_change_says_so_when_queued_edited_and_withdrawn(hub_factory):
    hub, _ = await started(hub_factory)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, pro)
    queued = (await change(hub, sub["id"], priceModelId=basic)).json()["change"]
    path = f"/v1/subscriptions/{sub['id']}/changes/{queued['id']}"
    assert (await hub.http.patch(path, json={"effectiveDate": "2024-04-01"})).status_code == 200
    assert (await post(hub, f"{path}/cancel", {})).status_code == 200
    cancel = (await change(hub, sub["id"], "cancel")).json()["change"]
    seen = []
    for name in ("Queued", "Edited", "Withdrawn"):
        for event in await events(hub, f"subscriptions/subscriptionChange{name}"):
            p = event["parameters"]
            seen.append((name, p["changeId"], p["kind"], p["effectiveDate"], p["status"]))
    assert sorted(seen) == sorted([
        ("Queued", queued["id"], "change", "2024-03-01", "queued"),
        ("Edited", queued["id"], "change", "2024-04-01", "queued"),
        ("Withdrawn", queued["id"], "change", "2024-04-01", "cancelled"),
        ("Queued", cancel["id"], "cancel", "2024-03-01", "queued"),
    ])  # fmt: skip


async def test_a_failed_change_is_shown_in_the_console_with_why(
    hub_factory, monkeypatch: pytest.MonkeyPatch
):
    hub, clock = await started(hub_factory)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, pro)
    queued = (await change(hub, sub["id"], priceModelId=basic)).json()["change"]

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug while applying")

    monkeypatch.setattr(applying.ChangeApplier, "_written", broken)
    clock.now = at("2024-03-01T00:30:00+01:00").now
    await hub.hub.periodic.run_once()
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        billing = await browser.get("/console/billing")
    assert "Subscription changes that failed" in billing.text
    assert queued["id"] in billing.text and "a bug while applying" in billing.text
