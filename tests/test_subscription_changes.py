"""Changing and cancelling subscriptions over HTTP, with a frozen clock, on both backends:
upgrades now with proration, downgrades queued to the period end, queued changes edited,
withdrawn and executed, cancellations with credits and fees, and each change applied once
however many workers look."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from app import jsoncodec
from app.testing import FrozenClock
from tests.conftest import HubClient
from tests.test_billing import ADDRESS, at, post
from tests.test_invoices import seller

CHANGED = "subscriptions/subscriptionChanged"
CANCELLED = "subscriptions/subscriptionCancelled"


def plan(name: str, fee: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "currency": "EUR",
        "vatPercent": 19,
        "interval": "month",
        "fee": Decimal(fee),
        **extra,
    }


async def model(hub: HubClient, spec: dict[str, Any]) -> str:
    answer = await post(hub, "/v1/price-models", spec)
    assert answer.status_code == 201, answer.text
    model_id: str = answer.json()["id"]
    return model_id


async def subscribe(hub: HubClient, model_id: str, **extra: Any) -> dict[str, Any]:
    body = {
        "transactionId": "bill-1",
        "customerNumber": "C-1",
        "productId": "PLAN",
        "priceModelId": model_id,
        "contractStart": "2024-02-01",
        "billingCycleAnchor": "2024-02-01",
        "billToAddress": ADDRESS,
        **extra,
    }
    answer = await post(hub, "/v1/bills", body)
    assert answer.status_code == 202, answer.text
    sub: dict[str, Any] = answer.json()["subscription"]
    return sub


async def change(hub: HubClient, sub_id: str, path: str = "changes", **body: Any) -> Any:
    return await hub.http.post(f"/v1/subscriptions/{sub_id}/{path}", content=jsoncodec.dumps(body))


async def info(hub: HubClient, transaction_id: str) -> dict[str, Any]:
    answer = await hub.http.get(f"/v1/billing-information/{transaction_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def grosses(found: dict[str, Any]) -> list[Decimal]:
    return [Decimal(str(i["grossUnitPrice"])) for i in found["parameters"]["invoice"]["items"]]


async def events(hub: HubClient, event_type: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await hub.http.get(f"/v1/events?type={event_type}")).json()[
        "data"
    ]
    return found


async def started(
    hub_factory: Any, when: str = "2024-02-01T10:00:00+01:00"
) -> tuple[HubClient, FrozenClock]:
    clock = at(when)
    hub: HubClient = await hub_factory(clock=clock)
    return hub, clock


async def test_an_upgrade_now_puts_its_proration_on_the_open_period(hub_factory):
    """Feb 15, 2024 (a leap year): 15 of February's 29 days remain. The period's draft is
    superseded by itself plus −15.52 (Basic unused) and +25.86 (Pro for the rest); the next
    cycle bills Pro in full."""
    hub, clock = await started(hub_factory)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, basic)
    clock.now = at("2024-02-15T09:00:00+01:00").now
    answer = await change(hub, sub["id"], priceModelId=pro)
    assert answer.status_code == 201, answer.text
    applied = answer.json()
    assert (
        applied["change"]["status"] == "applied"
        and applied["change"]["effectiveDate"] == "2024-02-15"
    )
    assert applied["subscription"]["priceModelId"] == pro
    period = f"{sub['id']}:2024-02-01"
    assert applied["change"]["result"]["superseded"] == [period]
    replaced = await info(hub, period)
    assert (replaced["status"], replaced["supersededBy"]) == ("superseded", f"{period}~2")
    now = await info(hub, f"{period}~2")
    assert grosses(now) == [Decimal("30.00"), Decimal("-15.52"), Decimal("25.86")]
    assert now["parameters"]["invoice"]["totalGrossAmount"] == 40.34
    assert now["status"] == "draft"  # the period's billing information was a draft
    [notice] = await events(hub, CHANGED)
    assert notice["parameters"]["billed"] == [f"{period}~2"]
    clock.now = at("2024-03-01T00:00:00+01:00").now
    await hub.hub.periodic.run_once()
    assert grosses(await info(hub, f"{sub['id']}:2024-03-01")) == [Decimal("50.00")]


async def test_an_upgrade_of_an_invoiced_period_is_a_credit_note_and_new_billing(hub_factory):
    hub, clock = await started(hub_factory)
    await seller(hub)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, basic, draft=False)  # the first period is invoiced at once
    clock.now = at("2024-02-15T09:00:00+01:00").now
    answer = await change(hub, sub["id"], priceModelId=pro, effective="now")
    result = answer.json()["change"]["result"]
    assert result["credited"] == ["INV-2024-000001"] and result["creditNotes"] == ["CN-2024-000001"]
    note = (await hub.http.get("/v1/credit-notes/CN-2024-000001")).json()
    assert note["totalGrossAmount"] == 15.52
    [charged] = result["billed"]
    assert grosses(await info(hub, charged)) == [Decimal("25.86")]


async def test_a_downgrade_waits_for_the_period_end_and_is_applied_once_then(hub_factory):
    hub, clock = await started(hub_factory)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, pro)
    clock.now = at("2024-02-15T09:00:00+01:00").now
    answer = await change(hub, sub["id"], priceModelId=basic)
    queued = answer.json()["change"]
    assert (queued["status"], queued["effectiveDate"]) == ("queued", "2024-03-01")
    listed = (await hub.http.get(f"/v1/subscriptions/{sub['id']}/changes")).json()["data"]
    assert [c["id"] for c in listed] == [queued["id"]]
    await hub.hub.periodic.run_once()
    assert (await hub.http.get(f"/v1/subscriptions/{sub['id']}")).json()["priceModelId"] == pro
    clock.now = at("2024-03-01T00:00:00+01:00").now
    await hub.hub.periodic.run_once()
    await hub.hub.periodic.run_once()
    done = (await hub.http.get(f"/v1/subscriptions/{sub['id']}/changes/{queued['id']}")).json()
    assert done["status"] == "applied"
    assert grosses(await info(hub, f"{sub['id']}:2024-03-01")) == [Decimal("30.00")]
    assert len(await events(hub, CHANGED)) == 1


async def test_queued_changes_are_edited_withdrawn_or_executed_now(hub_factory):
    hub, clock = await started(hub_factory)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, basic)
    base = f"/v1/subscriptions/{sub['id']}/changes"
    first = (
        await change(hub, sub["id"], priceModelId=pro, effective="date", effectiveDate="2024-03-15")
    ).json()["change"]
    edited = await hub.http.patch(f"{base}/{first['id']}", json={"effectiveDate": "2024-03-20"})
    assert edited.status_code == 200 and edited.json()["effectiveDate"] == "2024-03-20"
    replanned = await hub.http.patch(
        f"{base}/{first['id']}", json={"priceModelId": basic, "proration": "none"}
    )
    request = replanned.json()["request"]
    assert (request["priceModelId"], request["proration"]) == (basic, "none")
    assert "asked" not in request  # the copy kept to compare repeats is not shown
    bad = await hub.http.patch(f"{base}/{first['id']}", json={"priceModelId": "pm_nope"})
    assert bad.status_code == 422
    withdrawn = await hub.http.post(f"{base}/{first['id']}/cancel")
    assert withdrawn.json()["status"] == "cancelled"
    again = await hub.http.post(f"{base}/{first['id']}/execute")
    assert again.status_code == 409  # not queued any more
    second = (
        await change(hub, sub["id"], priceModelId=pro, effective="date", effectiveDate="2024-04-01")
    ).json()["change"]
    clock.now = at("2024-02-15T09:00:00+01:00").now
    executed = await hub.http.post(f"{base}/{second['id']}/execute")
    assert executed.status_code == 200, executed.text
    assert executed.json()["change"]["status"] == "applied"
    assert executed.json()["change"]["effectiveDate"] == "2024-02-15"
    assert executed.json()["subscription"]["priceModelId"] == pro
    late = await hub.http.patch(f"{base}/{second['id']}", json={"effectiveDate": "2024-05-01"})
    assert late.status_code == 409


async def test_cancel_now_credits_the_rest_and_charges_the_early_termination_fee(hub_factory):
    hub, clock = await started(hub_factory)
    basic = await model(hub, plan("Basic", "30.00", earlyTerminationFee=Decimal("20.00")))
    sub = await subscribe(hub, basic, contractEnd="2024-12-31")
    clock.now = at("2024-02-15T09:00:00+01:00").now
    answer = await change(hub, sub["id"], "cancel", effective="now", reason="moved away")
    assert answer.status_code == 201, answer.text
    assert answer.json()["subscription"]["status"] == "cancelled"
    period = await info(hub, f"{sub['id']}:2024-02-01~2")
    assert grosses(period) == [Decimal("30.00"), Decimal("-15.52"), Decimal("20.00")]
    [notice] = await events(hub, CANCELLED)
    assert notice["parameters"]["reason"] == "moved away"
    clock.now = at("2024-03-01T00:00:00+01:00").now
    await hub.hub.periodic.run_once()
    missing = await hub.http.get(f"/v1/billing-information/{sub['id']}:2024-03-01")
    assert missing.status_code == 404  # a cancelled subscription bills no more cycles
    refused = await change(hub, sub["id"], priceModelId=basic)
    assert refused.status_code == 409


async def test_cancel_at_the_period_end_bills_nothing_more(hub_factory):
    hub, clock = await started(hub_factory)
    basic = await model(hub, plan("Basic", "30.00"))
    sub = await subscribe(hub, basic)
    answer = await change(hub, sub["id"], "cancel")
    assert answer.json()["change"]["effectiveDate"] == "2024-03-01"
    twice = await change(hub, sub["id"], "cancel")
    assert twice.status_code == 409  # one cancellation at a time
    clock.now = at("2024-03-01T00:00:00+01:00").now
    await hub.hub.periodic.run_once()
    assert (await hub.http.get(f"/v1/subscriptions/{sub['id']}")).json()["status"] == "cancelled"
    gone = await hub.http.get(f"/v1/billing-information/{sub['id']}:2024-03-01")
    assert gone.status_code == 404


async def test_in_arrears_a_change_bills_the_used_part_then_the_new_plan(hub_factory):
    hub, clock = await started(hub_factory)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, basic, billInArrears=True)
    clock.now = at("2024-02-15T09:00:00+01:00").now
    await change(hub, sub["id"], priceModelId=pro, effective="now")
    assert grosses(await info(hub, f"{sub['id']}:2024-02-01")) == [Decimal("14.48")]
    clock.now = at("2024-03-01T00:00:00+01:00").now
    await hub.hub.periodic.run_once()
    assert grosses(await info(hub, f"{sub['id']}:2024-02-15")) == [Decimal("25.86")]


async def test_a_due_change_is_applied_once_by_racing_workers(hub_factory):
    """Two hubs on one database apply the same due change at once: one applies it, the other
    writes nothing; one supersession, one notice."""
    clock = at("2024-02-01T10:00:00+01:00")
    first: HubClient = await hub_factory(clock=clock)
    second: HubClient = await hub_factory(clock=clock)
    basic, pro = (
        await model(first, plan("Basic", "30.00")),
        await model(first, plan("Pro", "50.00")),
    )
    sub = await subscribe(first, basic)
    queued = (
        await change(
            first, sub["id"], priceModelId=pro, effective="date", effectiveDate="2024-02-15"
        )
    ).json()["change"]
    clock.now = at("2024-02-15T00:00:01+01:00").now
    counts = await asyncio.gather(
        first.hub.changes.run_due(), second.hub.changes.run_due(), first.hub.changes.run_due()
    )
    assert sum(counts) == 1
    done = (await first.http.get(f"/v1/subscriptions/{sub['id']}/changes/{queued['id']}")).json()
    assert done["status"] == "applied"
    assert len(await events(first, CHANGED)) == 1
    versions = (await first.http.get("/v1/billing-information?status=draft")).json()["data"]
    assert [v["transactionId"] for v in versions] == [f"{sub['id']}:2024-02-01~2"]


async def test_bad_changes_are_refused_and_change_nothing(hub_factory):
    hub, _clock = await started(hub_factory)
    basic = await model(hub, plan("Basic", "30.00"))
    yearly = await model(hub, plan("Yearly", "300.00") | {"interval": "year"})
    sub = await subscribe(hub, basic)
    cases = [
        ({"priceModelId": yearly}, 422),
        ({"priceModelId": "pm_nope"}, 422),
        ({}, 422),
        ({"priceModelId": basic, "effective": "date", "effectiveDate": "2024-01-01"}, 422),
        ({"priceModelId": basic, "effectiveDate": "2024-03-01"}, 422),
        ({"priceModelId": basic, "variables": {"seats": 3}}, 422),
        ({"priceModelId": basic, "proration": "invoice_now"}, 409),  # no seller details
    ]
    for body, status in cases:
        answer = await change(hub, sub["id"], **body)
        assert answer.status_code == status, (body, answer.text)
    assert (await change(hub, "sub_nope", priceModelId=basic)).status_code == 404
    listed = (await hub.http.get(f"/v1/subscriptions/{sub['id']}/changes")).json()["data"]
    assert listed == []


async def test_regenerating_a_cycle_draft_reprices_it_and_keeps_its_prorations(hub_factory):
    """A subscription cycle's draft regenerated after its price model is fixed takes the fixed
    fee; the proration lines a change added to it stay as they were."""
    hub, clock = await started(hub_factory)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, basic)
    clock.now = at("2024-02-15T09:00:00+01:00").now
    await change(hub, sub["id"], priceModelId=pro)
    fixed = await hub.http.patch(f"/v1/price-models/{basic}", json={"fee": 32})
    assert fixed.status_code == 200, fixed.text
    period = f"{sub['id']}:2024-02-01"
    answer = await hub.http.post(f"/v1/billing-information/{period}~2/regenerate", json={})
    assert answer.status_code == 201, answer.text
    assert grosses(answer.json()) == [Decimal("32.00"), Decimal("-15.52"), Decimal("25.86")]


async def test_invoice_now_finalizes_what_the_change_bills_at_once(hub_factory):
    """proration: invoice_now — the period's draft, superseded with the proration lines, is on
    an invoice before the answer; the change's result names it."""
    hub, clock = await started(hub_factory)
    await seller(hub)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, basic)
    clock.now = at("2024-02-15T09:00:00+01:00").now
    answer = await change(hub, sub["id"], priceModelId=pro, proration="invoice_now")
    assert answer.status_code == 201, answer.text
    [number] = answer.json()["change"]["result"]["invoices"]
    invoice = (await hub.http.get(f"/v1/invoices/{number}")).json()
    assert invoice["totalGrossAmount"] == 40.34
    assert (await info(hub, f"{sub['id']}:2024-02-01~2"))["status"] == "invoiced"


async def test_cancelling_in_arrears_bills_the_used_part_and_ends(hub_factory):
    hub, clock = await started(hub_factory)
    basic = await model(hub, plan("Basic", "30.00"))
    sub = await subscribe(hub, basic, billInArrears=True)
    clock.now = at("2024-02-15T09:00:00+01:00").now
    answer = await change(hub, sub["id"], "cancel", effective="now")
    assert answer.json()["subscription"]["status"] == "cancelled"
    assert grosses(await info(hub, f"{sub['id']}:2024-02-01")) == [Decimal("14.48")]


async def test_regenerating_the_used_part_of_a_cancelled_cycle_reprices_the_same_days(
    hub_factory,
):
    """In arrears, a cancellation bills the days used; regenerating that draft re-prices those
    days, not the whole period (found by tests/test_lifecycle_stateful.py: 0.97 became 30.00)."""
    hub, clock = await started(hub_factory)
    basic = await model(hub, plan("Basic", "30.00"))
    sub = await subscribe(hub, basic, billInArrears=True, draft=True)
    clock.now = at("2024-02-15T09:00:00+01:00").now
    await change(hub, sub["id"], "cancel", effective="now")
    period = f"{sub['id']}:2024-02-01"
    answer = await hub.http.post(f"/v1/billing-information/{period}/regenerate", json={})
    assert answer.status_code == 201, answer.text
    assert grosses(answer.json()) == [Decimal("14.48")]


async def test_a_change_repeated_with_its_idempotency_key_is_made_once(hub_factory):
    """A retried upgrade must not prorate twice: the same Idempotency-Key answers the first
    change (200); the key with another request is a 409 naming the difference."""
    hub, clock = await started(hub_factory)
    basic, pro = await model(hub, plan("Basic", "30.00")), await model(hub, plan("Pro", "50.00"))
    sub = await subscribe(hub, basic)
    clock.now = at("2024-02-15T09:00:00+01:00").now
    path, key = f"/v1/subscriptions/{sub['id']}/changes", {"idempotency-key": "upgrade-1"}
    first = await hub.http.post(path, json={"priceModelId": pro}, headers=key)
    again = await hub.http.post(path, json={"priceModelId": pro}, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["change"]["id"] == first.json()["change"]["id"]
    other = await hub.http.post(path, json={"priceModelId": basic}, headers=key)
    assert other.status_code == 409 and other.json()["error"]["details"]
    assert len(await events(hub, CHANGED)) == 1
    cancel = f"/v1/subscriptions/{sub['id']}/cancel"
    ended = [
        await hub.http.post(cancel, json={"effective": "now"}, headers={"idempotency-key": "c"})
        for _ in range(2)
    ]
    assert [a.status_code for a in ended] == [201, 200]
