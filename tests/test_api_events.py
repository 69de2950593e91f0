"""/v1/events: publish with idempotency, fan-out by type and filter, reading events back."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from app import jsoncodec
from app.events import request_hash
from app.ids import new_id
from app.records import Event, NewEvent
from app.tenants import DEFAULT_TENANT_ID
from tests.conftest import HubClient, seed_parameters

BILLING = "subscriptions/billingInformationAvailable"


async def test_publish_answers_202_with_the_number_of_deliveries(hub: HubClient):
    await hub.endpoint("http://127.0.0.1:9/a")
    await hub.endpoint("http://127.0.0.1:9/b", event_types=["other"])
    accepted = await hub.publish(BILLING, seed_parameters({"customerNumber": "C1"}))
    assert accepted["id"].startswith("evt_")
    assert (accepted["type"], accepted["deliveries"]) == (BILLING, 1)
    assert accepted["created_at"].endswith("Z")


async def test_event_types_and_filters_select_the_endpoints(hub: HubClient):
    """Deliveries go exactly to endpoints subscribed to the type whose filter fields all match."""
    everything = (await hub.endpoint("http://127.0.0.1:9/all"))["id"]
    billing = (await hub.endpoint("http://127.0.0.1:9/billing", event_types=[BILLING]))["id"]
    customer = (await hub.endpoint("http://127.0.0.1:9/c1", filter={"customerNumber": "C1"}))["id"]
    contract = (
        await hub.endpoint(
            "http://127.0.0.1:9/k", filter={"customerNumber": "C1", "externalContractId": "K-9"}
        )
    )["id"]
    cases = [
        (
            BILLING,
            seed_parameters({"customerNumber": "C1", "externalContractId": "K-9"}),
            {everything, billing, customer, contract},
        ),
        (
            BILLING,
            seed_parameters({"customerNumber": "C1", "externalContractId": "K-1"}),
            {everything, billing, customer},
        ),
        (BILLING, seed_parameters({"customerNumber": "C2"}), {everything, billing}),
        ("other.type", {"customerNumber": "C1"}, {everything, customer}),
        ("other.type", {"customerNumber": 7}, {everything}),  # not a string: matches no filter
    ]
    for event_type, parameters, expected in cases:
        event = await hub.publish(event_type, parameters)
        detail = (await hub.http.get(f"/v1/events/{event['id']}")).json()
        got = {d["endpoint_id"] for d in detail["deliveries"]}
        assert got == expected, (event_type, parameters)


@pytest.fixture(autouse=True)
async def declared(hub: HubClient) -> None:
    """The made-up type "t" is the tenant's own (publishing an unknown type is refused)."""
    await hub.declare("t")


async def test_same_client_id_returns_the_original_and_stores_nothing_new(hub: HubClient):
    await hub.endpoint("http://127.0.0.1:9/a")
    body = {"type": "t", "parameters": {"x": 1}, "id": "order-42"}
    first = await hub.http.post("/v1/events", json=body)
    again = await hub.http.post("/v1/events", json=body)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == first.json()
    listed = (await hub.http.get("/v1/events")).json()["data"]
    assert [e["id"] for e in listed] == [first.json()["id"]]
    detail = (await hub.http.get(f"/v1/events/{first.json()['id']}")).json()
    assert len(detail["deliveries"]) == 1


async def test_idempotency_key_header_works_like_the_client_id(hub: HubClient):
    body = {"type": "t", "parameters": {"x": 1}}
    headers = {"idempotency-key": "k-1"}
    first = await hub.http.post("/v1/events", json=body, headers=headers)
    again = await hub.http.post("/v1/events", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]


async def test_reused_key_with_a_different_body_is_409_naming_the_differences(hub: HubClient):
    await hub.http.post("/v1/events", json={"type": "t", "parameters": {"a": 1, "b": 2}, "id": "k"})
    clash = await hub.http.post(
        "/v1/events", json={"type": "t", "parameters": {"a": 1, "b": 3}, "id": "k"}
    )
    assert clash.status_code == 409
    error = clash.json()["error"]
    assert error["code"] == "conflict"
    assert error["details"] == [{"path": "parameters.b", "original": 2, "received": 3}]


async def test_equal_numbers_spelled_differently_are_the_same_request(hub: HubClient):
    """1.0 and 1 are the same value: a retried request with reformatted numbers is not a clash."""
    first = await hub.http.post(
        "/v1/events", content=b'{"type":"t","parameters":{"q":1.0},"id":"n"}'
    )
    again = await hub.http.post("/v1/events", content=b'{"type":"t","parameters":{"q":1},"id":"n"}')
    assert (first.status_code, again.status_code) == (202, 200)


async def test_a_repeat_is_judged_against_the_stored_body_or_the_hash_kept_in_the_row(
    hub: HubClient,
):
    """A generic event's request hash is worked out from its stored body when a repeat comes
    (not on every accept); an event stored with a hash in its row (as every event was before)
    is judged by that hash. Both routes, single and batch, answer alike."""
    await hub.http.post("/v1/events", json={"type": "t", "parameters": {"a": 1, "b": [2.50]},
                                            "id": "new"})  # fmt: skip
    same = {"type": "t", "parameters": {"b": [2.5], "a": 1.0}, "id": "new"}
    other = {"type": "t", "parameters": {"a": 1, "b": [2.51]}, "id": "new"}
    assert (await hub.http.post("/v1/events", json=same)).status_code == 200
    assert (await hub.http.post("/v1/events", json=other)).status_code == 409
    batch = (await hub.http.post("/v1/events/batch", json={"items": [same, other]})).json()
    assert [r["status"] for r in batch["results"]] == [200, 409]

    now = hub.hub.clock.now_ms()
    for key, digest in (("kept", request_hash("t", {"a": 1}, None)), ("odd", "a-kept-digest")):
        body = jsoncodec.dumps({"parameters": {"a": 1}, "type": "t"})
        event = Event(new_id("evt", now), DEFAULT_TENANT_ID, "t", body, now, digest, key)
        await hub.hub.store.events.insert(NewEvent(event, ()))
    again = {"type": "t", "parameters": {"a": 1}}
    assert (await hub.http.post("/v1/events", json={**again, "id": "kept"})).status_code == 200
    assert (await hub.http.post("/v1/events", json={**again, "id": "odd"})).status_code == 409


async def test_concurrent_duplicates_store_one_event(hub: HubClient):
    """Twenty simultaneous requests with one key (one group commit batch): one event."""
    body = {"type": "t", "parameters": {}, "id": "same"}
    answers = await asyncio.gather(*(hub.http.post("/v1/events", json=body) for _ in range(20)))
    assert sorted(r.status_code for r in answers) == [200] * 19 + [202]
    assert len({r.json()["id"] for r in answers}) == 1


async def test_parameters_keep_exact_decimals_and_key_order(hub: HubClient, receiver):
    """Numbers are never routed through float: 0.1 + 0.2 style values arrive as sent."""
    app, server = receiver
    ep = await hub.endpoint(server.url)
    app.set_secret(ep["secret"])
    raw = b'{"type":"t","parameters":{"z":0.30000000000000000001,"a":11.99,"q":1.0,"n":7}}'
    event = (await hub.http.post("/v1/events", content=raw)).json()
    await hub.drain()
    body = app.inbox.body(event["id"])
    assert body == b'{"parameters":{"z":0.30000000000000000001,"a":11.99,"q":1.0,"n":7},"type":"t"}'
    detail = (await hub.http.get(f"/v1/events/{event['id']}")).json()
    assert detail["parameters"] == {"z": 0.30000000000000000001, "a": 11.99, "q": 1.0, "n": 7}
    assert jsoncodec.loads(body)["parameters"]["z"] == Decimal("0.30000000000000000001")


async def test_list_filters_and_pagination(hub: HubClient):
    ids = []
    for n in range(4):
        customer = "C1" if n % 2 else "C2"
        ids.append((await hub.publish("a" if n < 2 else "b", {"customerNumber": customer}))["id"])
    by_type = (await hub.http.get("/v1/events?type=b")).json()["data"]
    assert [e["id"] for e in by_type] == ids[:1:-1]
    by_customer = (await hub.http.get("/v1/events?customerNumber=C1")).json()["data"]
    assert [e["id"] for e in by_customer] == [ids[3], ids[1]]
    page = (await hub.http.get("/v1/events?limit=3")).json()
    assert len(page["data"]) == 3 and page["next_cursor"] == ids[1]
    rest = (await hub.http.get(f"/v1/events?limit=3&cursor={page['next_cursor']}")).json()
    assert [e["id"] for e in rest["data"]] == [ids[0]] and rest["next_cursor"] is None
    future = (await hub.http.get("/v1/events?since=2999-01-01T00:00:00Z")).json()["data"]
    past = (await hub.http.get("/v1/events?until=2000-01-01")).json()["data"]
    assert future == [] and past == []
    window = (await hub.http.get("/v1/events?since=2000-01-01&until=2999-01-01")).json()["data"]
    assert len(window) == 4


async def test_event_detail_lists_deliveries_and_attempts(hub: HubClient, receiver):
    app, server = receiver
    ep = await hub.endpoint(server.url)
    app.set_secret(ep["secret"])
    event = await hub.publish("t", {"k": "v"})
    pending = (await hub.http.get(f"/v1/events/{event['id']}")).json()
    [delivery] = pending["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["endpoint_id"]) == (
        "pending",
        0,
        ep["id"],
    )
    assert delivery["next_attempt_at"] is not None
    await hub.drain()
    done = (await hub.http.get(f"/v1/events/{event['id']}")).json()
    [delivery] = done["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "succeeded",
        1,
        200,
    )
    assert delivery["next_attempt_at"] is None
    attempts = (await hub.http.get(f"/v1/deliveries/{delivery['id']}/attempts")).json()
    [attempt] = attempts["data"]
    assert attempt["trigger"] == "scheduled" and attempt["status_code"] == 200
    assert attempt["started_at"].endswith("Z") and attempt["duration_ms"] >= 0
    assert '"duplicate":false' in attempt["response_body"]


async def test_unknown_ids_are_404(hub: HubClient):
    for path in [
        "/v1/events/evt_nope",
        "/v1/deliveries/dlv_nope",
        "/v1/deliveries/dlv_nope/attempts",
    ]:
        response = await hub.http.get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
