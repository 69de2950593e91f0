"""The event-type catalog: every built-in type's schema and example, what the hub really
sends matching those schemas, the OpenAPI `webhooks`, tenants' own types with enforced
schemas, and typos refused where an endpoint subscribes or an event is published."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from jsonschema import Draft202012Validator

from app.catalog import BUILT_IN
from app.store import open_store, queries
from tests.conftest import SEALER, START_MS, HubClient
from tests.test_billing import ADDRESS, FIXTURES, at, fixture, post
from tests.test_invoices import finalize, seller

SEED = "subscriptions/billingInformationAvailable"


async def catalog(hub: HubClient) -> dict[str, dict[str, Any]]:
    answer = await hub.http.get("/v1/event-types")
    assert answer.status_code == 200, answer.text
    return {t["name"]: t for t in answer.json()["data"]}


def errors(schema: dict[str, Any], body: Any) -> list[str]:
    return [e.message for e in Draft202012Validator(schema).iter_errors(body)]


async def test_every_built_in_type_has_a_schema_its_example_matches(hub: HubClient):
    types = await catalog(hub)
    assert set(BUILT_IN) <= set(types)
    for name in BUILT_IN:
        entry = types[name]
        assert entry["builtIn"] and entry["description"], name
        assert errors(entry["schema"], entry["example"]) == [], name
    seed = json.loads((FIXTURES / "billing-information-available.seed.json").read_bytes())
    assert types[SEED]["example"] == seed
    broken = json.loads(json.dumps(seed))
    broken["parameters"]["invoice"]["totalGrossAmount"] = "7.99"  # money is a JSON number
    assert errors(types[SEED]["schema"], broken)


async def test_the_openapi_webhooks_describe_the_seed_event(hub: HubClient):
    """/openapi.json (3.1) has a `webhooks` entry per built-in type; the seed example is valid
    against it, resolved within the document as a code generator would."""
    document = (await hub.http.get("/openapi.json")).json()
    assert set(document["webhooks"]) == set(BUILT_IN)
    operation = document["webhooks"][SEED]["post"]
    assert [p["name"] for p in operation["parameters"]] == [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]
    schema = {**ref, "components": document["components"]}
    seed = json.loads((FIXTURES / "billing-information-available.seed.json").read_bytes())
    assert errors(schema, seed) == []
    assert errors(schema, {"parameters": {}, "type": SEED})  # not just anything


async def test_what_the_hub_sends_matches_the_catalog(hub_factory):
    """The billing flows produce every billing, invoice and lifecycle type; each stored body
    is valid against its catalog schema (the payloads are dicts: this keeps the models true)."""
    clock = at("2026-02-01T10:00:00+01:00")
    hub: HubClient = await hub_factory(clock=clock)
    await seller(hub)
    await post(hub, "/v1/usage-completions", fixture("usage-completion.seed.json"))
    _, [invoice] = await finalize(hub)
    credit = {"reason": "goodwill", "items": [{"line": 1, "amount": Decimal("5.00")}]}
    await post(hub, f"/v1/invoices/{invoice['number']}/credit-notes", credit)
    rebill = {
        "reason": "tariff",
        "items": [
            {
                "productID": "P",
                "description": "Trip",
                "quantity": 1,
                "grossUnitPrice": Decimal("6.99"),
                "vatPercent": 19,
            }
        ],
    }
    assert (await post(hub, f"/v1/invoices/{invoice['number']}/rebill", rebill)).status_code == 201
    plan = {
        "name": "Basic",
        "currency": "EUR",
        "vatPercent": 19,
        "interval": "month",
        "fee": Decimal("30.00"),
    }
    basic = (await post(hub, "/v1/price-models", plan)).json()["id"]
    pro = (await post(hub, "/v1/price-models", plan | {"name": "Pro", "fee": 50})).json()["id"]
    bill = {
        "customerNumber": "C-1",
        "productId": "ABO",
        "priceModelId": basic,
        "billToAddress": ADDRESS,
    }
    sub = (await post(hub, "/v1/bills", bill)).json()["subscription"]
    one_off = {
        "transactionId": "x",
        "customerNumber": "C-1",
        "productId": "S",
        "currency": "EUR",
        "billToAddress": ADDRESS,
        "oneOffLineItems": [
            {"description": "Setup", "quantity": 1, "grossUnitPrice": 5, "vatPercent": 19}
        ],
    }
    await post(hub, "/v1/bills", one_off)
    await hub.http.post("/v1/billing-information/x/discard", json={"reason": "twice"})
    clock.now = at("2026-02-15T09:00:00+01:00").now
    await post(hub, f"/v1/subscriptions/{sub['id']}/changes", {"priceModelId": pro})
    await post(hub, f"/v1/subscriptions/{sub['id']}/cancel", {"effective": "now"})
    other = (await post(hub, "/v1/bills", bill | {"priceModelId": pro})).json()["subscription"]
    queued = await post(hub, f"/v1/subscriptions/{other['id']}/changes", {"priceModelId": basic})
    path = f"/v1/subscriptions/{other['id']}/changes/{queued.json()['change']['id']}"
    edited = await hub.http.patch(path, json={"effectiveDate": "2026-04-01"})
    assert edited.status_code == 200, edited.text
    assert (await post(hub, f"{path}/cancel", {})).status_code == 200
    types = await catalog(hub)
    sent = (await hub.http.get("/v1/events?limit=500")).json()["data"]
    seen = set()
    for event in sent:
        body = {"parameters": event["parameters"], "type": event["type"]}
        assert errors(types[event["type"]]["schema"], body) == [], event["type"]
        seen.add(event["type"])
    operational = {
        "endpoint.failing",
        "endpoint.recovered",
        "endpoint.disabled",
        "message.attempt.exhausted",
        "subscription.change.failed",
        "webhook.test",
    }
    assert seen == set(BUILT_IN) - operational


async def test_a_declared_type_enforces_its_schema_on_publishing(hub: HubClient):
    schema = {
        "type": "object",
        "required": ["vehicle", "km"],
        "properties": {"vehicle": {"type": "string"}, "km": {"type": "number", "minimum": 0}},
    }
    declared = await hub.http.post(
        "/v1/event-types",
        json={"name": "rental.returned", "description": "A car came back", "schema": schema},
    )
    assert declared.status_code == 201, declared.text
    assert (await catalog(hub))["rental.returned"]["builtIn"] is False
    bad = await hub.http.post(
        "/v1/events", json={"type": "rental.returned", "parameters": {"vehicle": "B-X 1", "km": -3}}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == ["parameters", "km"]
    good = await hub.http.post(
        "/v1/events", json={"type": "rental.returned", "parameters": {"vehicle": "B-X 1", "km": 12}}
    )
    assert good.status_code == 202, good.text
    again = await hub.http.post("/v1/event-types", json={"name": "rental.returned"})
    assert again.status_code == 409
    assert (await hub.http.post("/v1/event-types", json={"name": SEED})).status_code == 409
    invalid = await hub.http.post(
        "/v1/event-types", json={"name": "x.y", "schema": {"type": "no-such-type"}}
    )
    assert invalid.status_code == 422 and "schema" in invalid.json()["error"]["message"]
    events = (await hub.http.get("/v1/events?type=rental.returned")).json()["data"]
    assert len(events) == 1  # the refused one wrote nothing


async def test_subscribing_to_an_unknown_type_is_refused_with_the_closest_names(hub: HubClient):
    """`subscriptions/billingInfoAvailable` used to be accepted and receive nothing."""
    typo = await hub.http.post(
        "/v1/endpoints",
        json={"url": "http://127.0.0.1:9/x", "event_types": ["subscriptions/billingInfoAvailable"]},
    )
    assert typo.status_code == 422
    error = typo.json()["error"]
    assert error["details"][0]["suggestions"][0] == SEED  # the closest first
    assert SEED in error["message"]
    ok = await hub.http.post(
        "/v1/endpoints", json={"url": "http://127.0.0.1:9/x", "event_types": [SEED]}
    )
    assert ok.status_code == 201
    patched = await hub.http.patch(
        f"/v1/endpoints/{ok.json()['id']}", json={"event_types": ["invoices/invoiceFinalised"]}
    )
    assert patched.status_code == 422
    assert patched.json()["error"]["details"][0]["suggestions"][0] == "invoices/invoiceFinalized"
    await hub.http.post("/v1/event-types", json={"name": "rental.returned"})
    own = await hub.http.patch(
        f"/v1/endpoints/{ok.json()['id']}", json={"event_types": ["rental.returned"]}
    )
    assert own.status_code == 200
    listed = (await hub.http.get("/v1/endpoints")).json()["data"]
    assert len(listed) == 1  # the refused registration wrote nothing


async def test_publishing_an_unknown_type_is_refused_with_the_closest_names(hub: HubClient):
    """A typo in a producer used to be stored and sent to every catch-all endpoint."""
    await hub.endpoint("http://127.0.0.1:9/all")
    typo = await hub.http.post(
        "/v1/events",
        json={"type": "subscriptions/billingInformationAvailabel", "parameters": {}},
    )
    assert typo.status_code == 422
    error = typo.json()["error"]
    assert error["details"][0]["loc"] == ["type"]
    assert error["details"][0]["suggestions"][0] == SEED
    assert "PATCH /v1/settings" in error["message"]  # says how to opt in
    batch = await hub.http.post(
        "/v1/events/batch", json={"items": [{"type": "rental.returnd", "parameters": {}}]}
    )
    [refused] = batch.json()["results"]
    assert refused["status"] == 422 and refused["error"]["details"][0]["loc"] == ["type"]
    assert (await hub.http.get("/v1/events")).json()["data"] == []


async def test_a_tenant_may_opt_in_to_free_form_types(hub: HubClient):
    """New tenants start strict; the setting lets anything through and can be turned off."""
    body = {"type": "anything.goes", "parameters": {"n": 1}}
    assert (await hub.http.get("/v1/settings")).json()["freeFormEventTypes"] is False
    assert (await hub.http.post("/v1/events", json=body)).status_code == 422
    opened = await hub.http.patch("/v1/settings", json={"freeFormEventTypes": True})
    assert opened.status_code == 200 and opened.json()["freeFormEventTypes"] is True
    assert opened.json()["autoFinalize"] is True  # the other settings are kept
    assert (await hub.http.post("/v1/events", json=body)).status_code == 202
    closed = await hub.http.patch("/v1/settings", json={"freeFormEventTypes": False})
    assert closed.json()["freeFormEventTypes"] is False
    assert (await hub.http.post("/v1/events", json=body)).status_code == 422
    # A built-in type's schema holds even for a free-form tenant.
    await hub.http.patch("/v1/settings", json={"freeFormEventTypes": True})
    loose = await hub.http.post("/v1/events", json={"type": SEED, "parameters": {}})
    assert loose.status_code == 422


async def test_a_built_in_type_published_by_hand_must_match_its_schema(hub: HubClient):
    """Subscribers of a built-in type are promised its schema, whoever publishes it."""
    seed = json.loads((FIXTURES / "billing-information-available.seed.json").read_bytes())
    seed["parameters"]["invoice"]["items"][0].pop("quantity")
    seed["parameters"]["invoice"]["currency"] = ["EUR"]
    bad = await hub.http.post("/v1/events", json=seed)
    assert bad.status_code == 422
    locs = [d["loc"] for d in bad.json()["error"]["details"]]
    assert ["parameters", "invoice", "currency"] in locs
    assert ["parameters", "invoice", "items", "0", "quantity"] in locs
    assert "parameters.invoice.items.0.quantity" in bad.json()["error"]["message"]
    extra = json.loads((FIXTURES / "billing-information-available.seed.json").read_bytes())
    extra["parameters"]["surprise"] = 1
    assert (await hub.http.post("/v1/events", json=extra)).status_code == 422
    assert (await hub.http.get("/v1/events")).json()["data"] == []


async def test_tenants_that_existed_before_the_rule_keep_free_form_types(database_url: str):
    """An upgrade must not start refusing a producer's events: the migration keeps tenants it
    finds free-form; tenants created afterwards start strict."""
    store = await open_store(database_url, sealer=SEALER)
    before = [m for m in queries.migrations(store.db.dialect) if m[0] < 14]
    await store.db.migrate(before, START_MS)
    old = await store.tenants.create("old", "0" * 64, START_MS)
    assert old is not None
    assert 14 in await store.migrate(START_MS)
    new = await store.tenants.create("new", "1" * 64, START_MS)
    assert new is not None
    assert (await store.tenants.settings(old[0].id)).free_form_types is True
    assert (await store.tenants.settings(new[0].id)).free_form_types is False
    await store.close()
