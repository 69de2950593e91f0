"""Billing over HTTP: usage completions, price models, charges, bills and subscriptions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from app import jsoncodec
from app.testing import FrozenClock
from tests.conftest import HubClient

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BILLING = "subscriptions/billingInformationAvailable"
ADDRESS = {
    "countryCode": "DE",
    "postalCode": "10115",
    "postalPlace": "Berlin",
    "street": "Invalidenstr.",
    "streetNumber": "1",
}


def fixture(name: str) -> Any:
    return jsoncodec.loads((FIXTURES / name).read_bytes())


def at(iso: str) -> FrozenClock:
    return FrozenClock(int(datetime.fromisoformat(iso).astimezone(UTC).timestamp() * 1000))


def completion(**changes: Any) -> dict[str, Any]:
    body = {
        "transactionId": "t-1",
        "customerNumber": "C-1",
        "externalContractId": "K-1",
        "currency": "EUR",
        "billingStartDate": "2026-11-20",
        "billingEndDate": "2026-11-20",
        "billToAddress": ADDRESS,
        "items": [
            {
                "productID": "P",
                "description": "Trip",
                "quantity": 1,
                "grossUnitPrice": 11.99,
                "vatPercent": 19,
            }
        ],
    }
    return body | changes


async def post(hub: HubClient, path: str, body: Any, **kwargs: Any) -> Any:
    return await hub.http.post(path, content=jsoncodec.dumps(body), **kwargs)


async def test_seed_input_produces_the_seed_payload(hub: HubClient):
    """Fed the seed's own data, the answer's billing information is the seed example."""
    response = await post(hub, "/v1/usage-completions", fixture("usage-completion.seed.json"))
    assert response.status_code == 202
    expected = fixture("billing-information-available.seed.json")
    assert jsoncodec.loads(response.content)["billing_information"] == expected["parameters"]


async def test_seed_payload_reaches_a_receiver_json_equal_and_signed(hub: HubClient, receiver):
    """End to end: the body a real receiver gets is JSON-equal to the seed example, numbers
    included, and its signature verifies with the standardwebhooks library."""
    app, server = receiver
    endpoint = await hub.endpoint(server.url, event_types=[BILLING])
    app.set_secret(endpoint["secret"])
    accepted = await post(hub, "/v1/usage-completions", fixture("usage-completion.seed.json"))
    event_id = accepted.json()["event_id"]
    await hub.drain()
    body = app.inbox.body(event_id)
    assert body is not None
    assert jsoncodec.loads(body) == fixture("billing-information-available.seed.json")
    assert json.loads(body) == json.loads(
        (FIXTURES / "billing-information-available.seed.json").read_text()
    )
    [attempt] = (await hub.http.get(f"/v1/events/{event_id}")).json()["deliveries"]
    assert attempt["status"] == "succeeded"
    # The receiver verified it; check once more with the public library on the stored bytes.
    headers = {"webhook-id": event_id, "webhook-timestamp": str(int(datetime.now(UTC).timestamp()))}
    headers["webhook-signature"] = Webhook(endpoint["secret"]).sign(
        event_id, datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC), body.decode()
    )
    Webhook(endpoint["secret"]).verify(body, headers)


async def test_defaults_for_missing_optional_fields(hub_factory):
    """invoiceDate is today in Berlin (23:30 UTC is already tomorrow there), due 30 days later,
    shipTo = billTo, orderReference = externalContractId, a PRE- reference, orderChannel null."""
    hub: HubClient = await hub_factory(clock=at("2026-11-21T23:30:00+00:00"))
    first = (await post(hub, "/v1/usage-completions", completion())).json()["billing_information"]
    second = (await post(hub, "/v1/usage-completions", completion(transactionId="t-2"))).json()
    invoice = first["invoice"]
    assert (invoice["invoiceDate"], invoice["dueDate"], invoice["orderDate"]) == (
        "2026-11-22",
        "2026-12-22",
        "2026-11-22",
    )
    assert invoice["shipToAddress"] == invoice["billToAddress"] == ADDRESS
    assert first["orderReference"] == invoice["orderReference"] == "K-1"
    assert invoice["orderChannel"] is None
    assert invoice["invoiceReference"] == "PRE-2026-000001"
    assert second["billing_information"]["invoice"]["invoiceReference"] == "PRE-2026-000002"
    assert [i["externalContractId"] for i in invoice["items"]] == ["K-1"]


async def test_same_transaction_id_is_idempotent_and_a_changed_body_is_409(hub: HubClient):
    first = await post(hub, "/v1/usage-completions", completion())
    again = await post(hub, "/v1/usage-completions", completion())
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == first.json()
    items = [
        {
            "productID": "P",
            "description": "Trip",
            "quantity": 2,
            "grossUnitPrice": 11.99,
            "vatPercent": 19,
        }
    ]
    clash = await post(hub, "/v1/usage-completions", completion(items=items, customerNumber="C-9"))
    assert clash.status_code == 409
    details = {d["path"]: (d["original"], d["received"]) for d in clash.json()["error"]["details"]}
    assert details == {
        "request.customerNumber": ("C-1", "C-9"),
        "request.items[0].quantity": (1, 2),
    }
    other_call = await post(
        hub,
        "/v1/charges",
        {"transactionId": "t-1", "customerNumber": "C-1", "currency": "EUR", "items": items},
    )
    assert other_call.status_code == 409
    assert {
        "path": "call",
        "original": "usage_completion",
        "received": "charge",
    } in other_call.json()["error"]["details"]
    assert len((await hub.http.get("/v1/events")).json()["data"]) == 1


async def test_rated_car_sharing_trip_and_price_model_versions(hub: HubClient):
    """A rated item prices through the model; PATCH makes version 2 for new usage while the
    first billing information keeps what version 1 priced."""
    model = (await post(hub, "/v1/price-models", fixture("price-model.car-sharing.json"))).json()
    assert (model["id"].startswith("pm_"), model["version"]) == (True, 1)
    trip = fixture("usage-completion.car-sharing.json")
    trip["items"][0]["priceModelId"] = model["id"]
    first = (await post(hub, "/v1/usage-completions", trip)).json()["billing_information"][
        "invoice"
    ]
    assert [(i["description"], i["quantity"], i["grossUnitPrice"]) for i in first["items"]] == [
        ("Unlock fee", 1, 1.0),
        ("Driving time 42 min", 42, 0.29),
        ("Distance 57 km", 1, 13.83),
    ]
    assert (first["totalGrossAmount"], first["totalNetAmount"]) == (27.01, 22.70)

    patched = await hub.http.patch(
        f"/v1/price-models/{model['id']}",
        json={"components": [{"type": "flat", "name": "Unlock fee", "amount": 2}]},
    )
    assert patched.status_code == 200 and patched.json()["version"] == 2
    assert (await hub.http.get(f"/v1/price-models/{model['id']}?version=1")).json()["components"][
        0
    ]["amount"] == 1.0
    second = await post(hub, "/v1/usage-completions", trip | {"transactionId": "trip-2"})
    assert second.status_code == 422  # version 2 has no minutes/km components any more
    fixed = trip | {
        "transactionId": "trip-3",
        "items": [{"productID": "T", "priceModelId": model["id"]}],
    }
    third = (await post(hub, "/v1/usage-completions", fixed)).json()
    assert third["billing_information"]["invoice"]["totalGrossAmount"] == 3.0  # the minimum
    records = [await hub.hub.store.billing.of_event(e) for e in (third["event_id"],)]
    assert records[0] is not None and records[0].price_models == ((model["id"], 2),)


async def test_charge_takes_the_customers_last_address(hub: HubClient):
    await post(hub, "/v1/usage-completions", completion())
    response = await post(
        hub,
        "/v1/charges",
        {
            "customerNumber": "C-1",
            "currency": "EUR",
            "reason": "penalty",
            "memo": "Smoking in the car",
            "items": [
                {
                    "productID": "FEE",
                    "description": "Cleaning fee",
                    "quantity": 1,
                    "grossUnitPrice": 50,
                    "vatPercent": 19,
                }
            ],
        },
        headers={"idempotency-key": "fee-77"},
    )
    assert response.status_code == 202
    info = response.json()["billing_information"]
    assert info["transactionId"] == "fee-77" and info["externalContractId"] is None
    assert info["invoice"]["billToAddress"] == ADDRESS
    assert (
        info["invoice"]["totalGrossAmount"] == 50.0 and info["invoice"]["totalNetAmount"] == 42.02
    )
    record = await hub.hub.store.billing.of_event(response.json()["event_id"])
    assert record is not None and (record.source, record.memo, record.metadata) == (
        "charge",
        "Smoking in the car",
        {"reason": "penalty"},
    )


async def test_one_off_bill_and_usage_bill(hub: HubClient):
    one_off = await post(
        hub,
        "/v1/bills",
        {
            "customerNumber": "C-1",
            "productId": "SETUP",
            "currency": "EUR",
            "billToAddress": ADDRESS,
            "oneOffLineItems": [
                {"description": "Setup", "quantity": 1, "grossUnitPrice": 99, "vatPercent": 19}
            ],
            "memo": "welcome",
            "metadata": {"crm": "42"},
        },
    )
    assert one_off.status_code == 202
    body = one_off.json()
    assert body["subscription"] is None
    assert body["billing_information"]["invoice"]["items"][0]["productID"] == "SETUP"
    model = (await post(hub, "/v1/price-models", fixture("price-model.car-sharing.json"))).json()
    usage = await post(
        hub,
        "/v1/bills",
        {
            "customerNumber": "C-1",
            "productId": "TRIP",
            "priceModelId": model["id"],
            "variables": {"minutes": 10, "km": 5},
        },
    )
    assert usage.json()["billing_information"]["invoice"]["totalGrossAmount"] == 5.15


def _seed_model() -> dict[str, Any]:
    return {
        "name": "Monthly plan",
        "currency": "USD",
        "vatPercent": 0,
        "interval": "month",
        "fee": 30,
    }


async def test_seed_bill_prorates_to_the_anchor_then_bills_each_month(hub_factory):
    """$30/month started 2024-04-16 with anchor 2024-05-01 → $15.00 now, $30.00 on May 1, …"""
    clock = at("2024-04-16T10:00:00+02:00")
    hub: HubClient = await hub_factory(clock=clock)
    model = (await post(hub, "/v1/price-models", _seed_model())).json()
    request = {
        "transactionId": "bill-1",
        "customerNumber": "ACME",
        "productId": "PLAN",
        "priceModelId": model["id"],
        "billingCycleAnchor": "2024-05-01",
        "contractStart": "2024-04-16",
        "billToAddress": ADDRESS,
    }
    response = await post(hub, "/v1/bills", request)
    assert response.status_code == 202
    first = response.json()
    invoice = first["billing_information"]["invoice"]
    assert invoice["totalGrossAmount"] == 15.0
    assert (invoice["billingStartDate"], invoice["billingEndDate"]) == ("2024-04-16", "2024-04-30")
    sub = first["subscription"]
    assert (sub["nextPeriodStart"], sub["status"], sub["cyclesBilled"]) == (
        "2024-05-01",
        "active",
        1,
    )
    assert (await hub.hub.periodic.run_once())["subscriptions"] == 0

    clock.now = at("2024-05-01T00:00:00+02:00").now
    assert (await hub.hub.periodic.run_once())["subscriptions"] == 1
    clock.now = at("2024-06-01T00:00:00+02:00").now
    await hub.hub.periodic.run_once()
    events = (await hub.http.get(f"/v1/events?type={BILLING}")).json()["data"]
    periods = sorted(
        (
            e["parameters"]["invoice"]["billingStartDate"],
            e["parameters"]["invoice"]["totalGrossAmount"],
        )
        for e in events
    )
    assert periods == [("2024-04-16", 15.0), ("2024-05-01", 30.0), ("2024-06-01", 30.0)]
    again = await post(hub, "/v1/bills", request)
    assert again.status_code == 200 and again.json()["subscription"]["id"] == sub["id"]
    assert again.json()["billing_information"]["invoice"]["totalGrossAmount"] == 15.0


async def test_subscription_cycles_survive_a_restart(hub_factory):
    """The schedule is stored: a hub started later bills what came due while it was down."""
    clock = at("2024-04-16T10:00:00+02:00")
    first: HubClient = await hub_factory(clock=clock)
    model = (await post(first, "/v1/price-models", _seed_model())).json()
    await post(
        first,
        "/v1/bills",
        {
            "customerNumber": "ACME",
            "productId": "PLAN",
            "priceModelId": model["id"],
            "billingCycleAnchor": "2024-05-01",
            "billToAddress": ADDRESS,
        },
    )
    later = at("2024-07-02T09:00:00+02:00")
    second: HubClient = await hub_factory(clock=later)
    for _ in range(5):
        await second.hub.periodic.run_once()
    events = (await second.http.get(f"/v1/events?type={BILLING}")).json()["data"]
    starts = sorted(e["parameters"]["invoice"]["billingStartDate"] for e in events)
    assert starts == ["2024-04-16", "2024-05-01", "2024-06-01", "2024-07-01"]


async def test_bill_in_arrears_and_contract_end(hub_factory):
    """In arrears each period is billed when it ends; the contract's end prorates the last one."""
    clock = at("2024-04-01T08:00:00+02:00")
    hub: HubClient = await hub_factory(clock=clock)
    model = (await post(hub, "/v1/price-models", _seed_model())).json()
    response = await post(
        hub,
        "/v1/bills",
        {
            "customerNumber": "ACME",
            "productId": "PLAN",
            "priceModelId": model["id"],
            "billInArrears": True,
            "contractStart": "2024-04-01",
            "contractEnd": "2024-05-15",
            "billToAddress": ADDRESS,
        },
    )
    body = response.json()
    assert body["billing_information"] is None and body["subscription"]["nextBillAt"].startswith(
        "2024-04-30T22:00"
    )
    for moment in (
        "2024-05-01T00:00:00+02:00",
        "2024-05-16T00:00:00+02:00",
        "2024-07-01T00:00:00+02:00",
    ):
        clock.now = at(moment).now
        await hub.hub.periodic.run_once()
    events = (await hub.http.get(f"/v1/events?type={BILLING}")).json()["data"]
    billed = sorted(
        (
            e["parameters"]["invoice"]["billingStartDate"],
            e["parameters"]["invoice"]["billingEndDate"],
            e["parameters"]["invoice"]["totalGrossAmount"],
        )
        for e in events
    )
    assert billed == [("2024-04-01", "2024-04-30", 30.0), ("2024-05-01", "2024-05-15", 14.52)]
    sub = (await hub.http.get(f"/v1/subscriptions/{body['subscription']['id']}")).json()
    assert sub["status"] == "ended" and sub["nextBillAt"] is None


async def test_a_reused_bill_transaction_with_other_terms_is_409(hub: HubClient):
    model = (await post(hub, "/v1/price-models", _seed_model())).json()
    request = {
        "transactionId": "b-1",
        "customerNumber": "ACME",
        "productId": "PLAN",
        "priceModelId": model["id"],
        "billToAddress": ADDRESS,
    }
    assert (await post(hub, "/v1/bills", request)).status_code == 202
    clash = await post(hub, "/v1/bills", request | {"productId": "OTHER"})
    assert clash.status_code == 409
    assert clash.json()["error"]["details"] == [
        {"path": "productId", "original": "PLAN", "received": "OTHER"}
    ]


async def test_amounts_stay_exact_decimals_in_storage(hub: HubClient):
    accepted = (await post(hub, "/v1/usage-completions", completion())).json()
    record = await hub.hub.store.billing.of_event(accepted["event_id"])
    assert record is not None
    assert (record.total_gross, record.total_net) == (Decimal("11.99"), Decimal("10.08"))


async def test_the_reference_receiver_shows_money_as_it_was_sent(hub: HubClient, receiver):
    """The receiver merchants copy parsed amounts as floats and showed 22.7 where billhook
    sent 22.70: /received now shows the payload as it arrived, and verify.parse gives Decimals."""
    from decimal import Decimal

    import httpx

    from subscribers.verify import parse

    app, server = receiver
    app.set_secret((await hub.endpoint(server.url))["secret"])
    items = [{"productID": "P", "description": "Trip", "quantity": 1,
              "grossUnitPrice": Decimal("27.01"), "vatPercent": 19}]  # fmt: skip
    accepted = await post(hub, "/v1/usage-completions", completion(items=items))
    await hub.drain()
    async with httpx.AsyncClient() as client:
        shown = (await client.get(server.url.replace("/webhooks", "/received"))).content
    assert b'"totalNetAmount":22.70' in shown and b'"totalGrossAmount":27.01' in shown
    assert json.loads(shown)["data"][0]["webhook_id"] == accepted.json()["event_id"]
    [latest] = app.inbox.latest()
    assert latest["payload"]["parameters"]["invoice"]["totalNetAmount"] == Decimal("22.70")
    assert str(parse(b'{"a": 22.70}')["a"]) == "22.70"


async def test_bill_variables_in_the_seed_shape_price_like_the_flat_map(hub: HubClient):
    """Seed 001: `variables` holds one object of arguments per named price function (a
    component's `id`, else its variable); it prices exactly as the flat map does, a function
    or argument the model lacks is a 422 naming it, and one request uses one shape."""
    spec = fixture("price-model.car-sharing.json")
    spec["components"][1]["id"] = "drivingTime"
    model = (await post(hub, "/v1/price-models", spec)).json()
    bill = {"customerNumber": "C-1", "productId": "TRIP", "priceModelId": model["id"],
            "billToAddress": ADDRESS}  # fmt: skip
    seed = await post(
        hub, "/v1/bills", bill | {"variables": {"drivingTime": {"minutes": 42}, "km": {"km": 57}}}
    )
    flat = await post(hub, "/v1/bills", bill | {"variables": {"minutes": 42, "km": 57}})
    assert seed.status_code == flat.status_code == 202, seed.text
    totals = [r.json()["billing_information"]["invoice"]["totalGrossAmount"] for r in (seed, flat)]
    assert totals == [27.01, 27.01]
    for variables, path in (
        ({"drivingTime": {"minutes": 42}, "distance": {"km": 5}}, "variables.distance"),
        ({"drivingTime": {"km": 42}, "km": {"km": 5}}, "variables.drivingTime.km"),
        ({"drivingTime": {"minutes": 42}, "km": 5}, "variables.km"),
    ):
        answer = await post(hub, "/v1/bills", bill | {"variables": variables})
        assert answer.status_code == 422, variables
        assert answer.json()["error"]["details"][0]["loc"] == path.split("."), answer.text
