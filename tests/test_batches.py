"""Bulk ingest: up to 1,000 items per request, each validated, idempotent and answered on its
own, every accepted item durable before the answer."""

from __future__ import annotations

from typing import Any

from app import jsoncodec
from tests.backends import rows
from tests.conftest import HubClient, seed_parameters
from tests.test_billing import completion

BILLING = "subscriptions/billingInformationAvailable"


async def batch(hub: HubClient, path: str, items: list[Any]) -> Any:
    return await hub.http.post(path, content=jsoncodec.dumps({"items": items}))


async def test_an_event_batch_answers_each_item_at_its_index(hub: HubClient):
    await hub.endpoint("http://127.0.0.1:9/x")
    await hub.publish("t.known", {"n": 0}, id="dup")
    items = [
        {"type": BILLING, "parameters": seed_parameters({"transactionId": "1"}), "id": "e-1"},
        {"type": "t.known", "parameters": {"n": 0}, "id": "dup"},  # the same again: a repeat
        {"type": "t.known", "parameters": {"n": 9}, "id": "dup"},  # another under its id: 409
        {"type": "", "parameters": {}},  # invalid: 422
        {"type": BILLING, "parameters": seed_parameters({"transactionId": "2"})},
    ]
    answer = await batch(hub, "/v1/events/batch", items)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == [202, 200, 409, 422, 202]
    assert results[0]["result"]["deliveries"] == 1 and results[3]["error"]["code"]
    database = hub.hub.settings.database_url
    stored = await rows(database, "SELECT count(*) FROM events")
    assert stored == [(3,)]  # dup + two accepted, committed before the answer
    again = await batch(hub, "/v1/events/batch", items[:1])
    assert again.json()["results"][0]["status"] == 200


async def test_a_usage_completion_batch_prices_each_item(hub: HubClient):
    items = [completion(transactionId=f"t-{n}") for n in range(50)]
    items.append(completion(transactionId="t-0", customerNumber="C-other"))  # reused id: 409
    items.append({"transactionId": "bad"})
    answer = await batch(hub, "/v1/usage-completions/batch", items)
    results = answer.json()["results"]
    assert [r["status"] for r in results[:50]] == [202] * 50
    assert (results[50]["status"], results[51]["status"]) == (409, 422)
    assert results[7]["result"]["billing_information"]["transactionId"] == "t-7"
    listed = (await hub.http.get("/v1/billing-information?limit=500")).json()["data"]
    assert len(listed) == 50


async def test_batches_are_bounded(hub: HubClient):
    too_many = await batch(hub, "/v1/events/batch", [{"type": "t", "parameters": {}}] * 1001)
    assert too_many.status_code == 422
    empty = await batch(hub, "/v1/events/batch", [])
    assert empty.status_code == 422
    shapeless = await hub.http.post("/v1/events/batch", json=[{"type": "t"}])
    assert shapeless.status_code == 422
    assert (await hub.http.get("/v1/events")).json()["data"] == []
