"""Drafts (seed 001's `draft: true`): billing information that waits to be approved, discarded
with a reason or regenerated, each notified; automatic finalization is a tenant's setting and
leaves drafts alone unless the tenant says otherwise."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from app import jsoncodec
from app.testing import FrozenClock
from tests.conftest import START_MS, HubClient
from tests.test_billing import ADDRESS, fixture, post
from tests.test_invoices import complete, finalize, seller

HOUR = 3600
DISCARDED = "subscriptions/billingInformationDiscarded"
SUPERSEDED = "subscriptions/billingInformationSuperseded"


def one_off(transaction_id: str = "b-1", price: int = 25, **changes: Any) -> dict[str, Any]:
    return {
        "transactionId": transaction_id,
        "customerNumber": "C-7",
        "externalContractId": "K-7",
        "productId": "SETUP",
        "currency": "EUR",
        "billToAddress": ADDRESS,
        "oneOffLineItems": [
            {"description": "Setup", "quantity": 1, "grossUnitPrice": price, "vatPercent": 19}
        ],
        **changes,
    }


async def billed(hub: HubClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = await post(hub, "/v1/bills", body)
    assert answer.status_code == 202, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def info(hub: HubClient, transaction_id: str) -> dict[str, Any]:
    answer = await hub.http.get(f"/v1/billing-information/{transaction_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def act(hub: HubClient, transaction_id: str, verb: str, **body: Any) -> Any:
    return await hub.http.post(f"/v1/billing-information/{transaction_id}/{verb}", json=body)


async def events_of(hub: HubClient, event_type: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await hub.http.get(f"/v1/events?type={event_type}")).json()[
        "data"
    ]
    return found


async def test_a_draft_waits_for_approval_and_approving_finalizes_it(hub: HubClient):
    """A bill is a draft by default: finalizing skips it; approving puts it on an invoice of
    its own, once. Without seller details approval is a 409 and the draft stays a draft."""
    await billed(hub, one_off())
    assert (await info(hub, "b-1"))["status"] == "draft"
    refused = await act(hub, "b-1", "approve")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "seller_missing"
    assert (await info(hub, "b-1"))["status"] == "draft"
    await seller(hub)
    assert await finalize(hub) == (200, [])  # drafts are not finalized with the open ones
    approved = await act(hub, "b-1", "approve")
    assert approved.status_code == 201, approved.text
    invoice = approved.json()
    assert invoice["document"]["invoice"]["totalGrossAmount"] == 25
    after = await info(hub, "b-1")
    assert (after["status"], after["invoiceNumber"]) == ("invoiced", invoice["number"])
    again = await act(hub, "b-1", "approve")
    assert again.status_code == 409 and again.json()["error"]["code"] == "wrong_state"


async def test_a_discarded_draft_is_kept_with_its_reason_and_notified(hub: HubClient):
    await seller(hub)
    await billed(hub, one_off())
    discarded = await act(hub, "b-1", "discard", reason="ordered twice")
    assert discarded.status_code == 200, discarded.text
    assert (discarded.json()["status"], discarded.json()["statusReason"]) == (
        "discarded",
        "ordered twice",
    )
    [event] = await events_of(hub, DISCARDED)
    assert event["parameters"] == {
        "customerNumber": "C-7",
        "externalContractId": "K-7",
        "invoiceReference": (await info(hub, "b-1"))["parameters"]["invoice"]["invoiceReference"],
        "orderReference": "K-7",
        "reason": "ordered twice",
        "transactionId": "b-1",
    }
    for verb in ("approve", "discard", "regenerate"):
        answer = await act(hub, "b-1", verb, **({"reason": "x"} if verb == "discard" else {}))
        assert answer.status_code == 409, verb
    listed = (await hub.http.get("/v1/billing-information?status=discarded")).json()["data"]
    assert [i["transactionId"] for i in listed] == ["b-1"]


async def test_regenerating_reprices_with_the_fixed_price_model_and_supersedes(hub: HubClient):
    """After a price model fix (PATCH: a new version), regenerate prices the draft's inputs
    again: the new billing information `b-1~2` carries the same reference and the new price, the
    old one is superseded and points to it, and both changes are notified."""
    spec = fixture("price-model.car-sharing.json")
    model = (await post(hub, "/v1/price-models", spec)).json()
    body = {"transactionId": "b-1", "customerNumber": "C-1", "productId": "TRIP",
            "priceModelId": model["id"], "billToAddress": ADDRESS,
            "variables": {"minutes": 42, "km": 57}}  # fmt: skip
    first = await billed(hub, body)
    assert first["billing_information"]["invoice"]["totalGrossAmount"] == 27.01
    fixed = spec["components"][0] | {"amount": Decimal("0.50")}
    patched = await hub.http.patch(
        f"/v1/price-models/{model['id']}",
        content=jsoncodec.dumps({"components": [fixed, *spec["components"][1:]]}),
    )
    assert patched.status_code == 200, patched.text
    regenerated = await act(hub, "b-1", "regenerate", reason="unlock fee fixed")
    assert regenerated.status_code == 201, regenerated.text
    new = regenerated.json()
    assert (new["transactionId"], new["status"]) == ("b-1~2", "draft")
    assert new["parameters"]["invoice"]["totalGrossAmount"] == 26.51
    reference = first["billing_information"]["invoice"]["invoiceReference"]
    assert new["parameters"]["invoice"]["invoiceReference"] == reference
    old = await info(hub, "b-1")
    assert (old["status"], old["supersededBy"], old["statusReason"]) == (
        "superseded",
        "b-1~2",
        "unlock fee fixed",
    )
    [notice] = await events_of(hub, SUPERSEDED)
    assert (notice["parameters"]["transactionId"], notice["parameters"]["supersededBy"]) == (
        "b-1",
        "b-1~2",
    )
    again = await act(hub, "b-1~2", "regenerate")
    assert again.json()["transactionId"] == "b-1~3"


async def test_only_drafts_have_a_lifecycle_and_unknown_ones_are_404(hub: HubClient):
    await complete(hub)  # a usage completion is open billing information, never a draft
    for verb in ("approve", "regenerate"):
        answer = await act(hub, "t-1", verb)
        assert answer.status_code == 409 and "open" in answer.json()["error"]["message"]
    assert (await act(hub, "nope", "approve")).status_code == 404
    assert (await hub.http.get("/v1/billing-information/nope")).status_code == 404
    assert (await act(hub, "t-1", "discard")).status_code == 422  # a reason is required
    assert (await info(hub, "t-1"))["status"] == "open"


async def test_approve_and_discard_racing_leave_one_outcome(hub: HubClient):
    """Whichever commits first wins; the other is a 409 and changes nothing."""
    await seller(hub)
    await billed(hub, one_off())
    answers = await asyncio.gather(
        act(hub, "b-1", "approve"), act(hub, "b-1", "discard", reason="race")
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([200, 409], [201, 409]), [a.text for a in answers]
    state = (await info(hub, "b-1"))["status"]
    assert state == ("invoiced" if 201 in statuses else "discarded")
    invoices = (await hub.http.get("/v1/invoices")).json()["data"]
    assert len(invoices) == (1 if state == "invoiced" else 0)


async def test_automatic_finalization_is_a_tenant_setting_off_for_drafts(hub_factory):
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, finalize_after=24 * HOUR)
    await seller(hub)
    settings = (await hub.http.get("/v1/settings")).json()
    assert settings == {"autoFinalize": True, "autoFinalizeDrafts": False,
                        "finalizeAfterSeconds": 86400, "freeFormEventTypes": False}  # fmt: skip
    await billed(hub, one_off())
    await complete(hub, customerNumber="C-8", transactionId="open-1")

    async def invoiced_after(hours: int) -> list[str]:
        clock.advance(hours * HOUR)
        await hub.hub.periodic.run_once()
        listed = (await hub.http.get("/v1/invoices")).json()["data"]
        return sorted(i["customerNumber"] for i in listed)

    assert await invoiced_after(25) == ["C-8"]  # the draft waits
    changed = await hub.http.patch("/v1/settings", json={"autoFinalizeDrafts": True})
    assert changed.json()["autoFinalizeDrafts"] is True and changed.json()["autoFinalize"]
    assert await invoiced_after(1) == ["C-7", "C-8"]
    off = await hub.http.patch("/v1/settings", json={"autoFinalize": False})
    assert off.json()["autoFinalize"] is False
    await complete(hub, customerNumber="C-9", transactionId="open-2")
    assert await invoiced_after(48) == ["C-7", "C-8"]  # nothing is finalized on its own
    bad = await hub.http.patch("/v1/settings", json={"autoFinalize": "yes"})
    assert bad.status_code == 422
