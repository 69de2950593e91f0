"""Billing bad input: 422 naming the field, and nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from app import jsoncodec
from tests.conftest import HubClient
from tests.test_billing import ADDRESS, completion, fixture, post


def _item(**changes: Any) -> dict[str, Any]:
    base = {
        "productID": "P",
        "description": "Trip",
        "quantity": 1,
        "grossUnitPrice": 11.99,
        "vatPercent": 19,
    }
    return base | changes


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown currency", {"currency": "EUX"}, "currency"),
    ("lower-case currency", {"currency": "eur"}, "currency"),
    ("a special drawing right is not billable", {"currency": "XDR"}, "currency"),
    ("a fund code is not a currency (BOV)", {"currency": "BOV"}, "currency"),
    ("a fund code is not a currency (CLF)", {"currency": "CLF"}, "currency"),
    (
        "an amount of 1e24",
        {"items": [_item(grossUnitPrice=jsoncodec.loads(b"1e24"))]},
        "grossUnitPrice",
    ),
    (
        "16 significant digits (a double keeps 15)",
        {"items": [_item(grossUnitPrice=jsoncodec.loads(b"1234567890.123456"))]},
        "grossUnitPrice",
    ),
    (
        "a line beyond 15 digits: 1e11 units at 1e11",
        {
            "items": [
                _item(quantity=jsoncodec.loads(b"1e11"), grossUnitPrice=jsoncodec.loads(b"1e11"))
            ]
        },
        "items",
    ),
    (
        "a total beyond 15 digits",
        {"items": [_item(quantity=9_000_000_000, grossUnitPrice=9000)]},
        "items",
    ),
    ("zero quantity", {"items": [_item(quantity=0)]}, "quantity"),
    ("negative quantity", {"items": [_item(quantity=-1)]}, "quantity"),
    ("VAT above 100", {"items": [_item(vatPercent=101)]}, "vatPercent"),
    ("negative VAT", {"items": [_item(vatPercent=-7)]}, "vatPercent"),
    (
        "seven decimals in a quantity",
        {"items": [_item(quantity=jsoncodec.loads(b"1.0000001"))]},
        "quantity",
    ),
    (
        "seven decimals in a price",
        {"items": [_item(grossUnitPrice=jsoncodec.loads(b"0.1234567"))]},
        "grossUnitPrice",
    ),
    ("price as a string", {"items": [_item(grossUnitPrice="11.99")]}, "grossUnitPrice"),
    (
        "unknown price model",
        {"items": [{"productID": "P", "priceModelId": "pm_nope", "usage": {}}]},
        "priceModelId",
    ),
    (
        "end before start",
        {"billingStartDate": "2026-11-20", "billingEndDate": "2026-11-19"},
        "billingEndDate",
    ),
    ("not a date", {"billingStartDate": "20.11.2026"}, "billingStartDate"),
    ("due before invoice", {"invoiceDate": "2026-11-20", "dueDate": "2026-11-19"}, "dueDate"),
    ("negative total", {"items": [_item(grossUnitPrice=-5)]}, "items"),
    ("no items", {"items": []}, "items"),
    ("missing transactionId", {"transactionId": None}, "transactionId"),
    ("address without a country", {"billToAddress": {"street": "x"}}, "countryCode"),
    ("country not ISO", {"billToAddress": ADDRESS | {"countryCode": "Germany"}}, "countryCode"),
    ("unknown field", {"discount": 5}, "discount"),
    ("unknown item field", {"items": [_item(colour="red")]}, "colour"),
]


async def _nothing_stored(hub: HubClient) -> None:
    assert (await hub.http.get("/v1/events")).json()["data"] == []


@pytest.mark.parametrize(("case", "changes", "field"), CASES)
async def test_bad_usage_completion(hub: HubClient, case: str, changes: dict[str, Any], field: str):
    body = {k: v for k, v in (completion() | changes).items() if v is not None}
    response = await post(hub, "/v1/usage-completions", body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(field in d["loc"] for d in error["details"]), error
    await _nothing_stored(hub)


@pytest.fixture
async def car_model(hub: HubClient) -> str:
    created = await post(hub, "/v1/price-models", fixture("price-model.car-sharing.json"))
    model_id: str = created.json()["id"]
    return model_id


@pytest.mark.parametrize(
    ("usage", "field"),
    [
        ({"minutes": 10}, "km"),
        ({"minutes": 10, "km": 5, "kwh": 1}, "kwh"),
        ({"minutes": -1, "km": 5}, "minutes"),
    ],
)
async def test_rated_usage_must_fit_the_model(
    hub: HubClient, car_model: str, usage: dict[str, int], field: str
):
    body = completion(items=[{"productID": "T", "priceModelId": car_model, "usage": usage}])
    response = await post(hub, "/v1/usage-completions", body)
    assert response.status_code == 422
    assert any(field in d["loc"] for d in response.json()["error"]["details"])
    await _nothing_stored(hub)


async def test_price_model_in_another_currency(hub: HubClient, car_model: str):
    body = completion(
        currency="USD",
        items=[{"productID": "T", "priceModelId": car_model, "usage": {"minutes": 1, "km": 1}}],
    )
    response = await post(hub, "/v1/usage-completions", body)
    assert response.status_code == 422 and "EUR" in response.json()["error"]["details"][0]["msg"]


BILL_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("neither model nor items", {}, "oneOffLineItems"),
    ("unknown price model", {"priceModelId": "pm_nope"}, "priceModelId"),
    ("one-off items without currency", {"oneOffLineItems": [_item()]}, "currency"),
    (
        "contract end before start",
        {"priceModelId": "pm_x", "contractStart": "2026-01-02", "contractEnd": "2026-01-01"},
        "contractEnd",
    ),
    (
        "draft as a string",
        {"oneOffLineItems": [_item()], "currency": "EUR", "draft": "no"},
        "draft",
    ),
]


@pytest.mark.parametrize(("case", "changes", "field"), BILL_CASES)
async def test_bad_bill(hub: HubClient, case: str, changes: dict[str, Any], field: str):
    body = {"customerNumber": "C", "productId": "P", "billToAddress": ADDRESS} | changes
    response = await post(hub, "/v1/bills", body)
    assert response.status_code == 422, response.text
    assert any(field in d["loc"] for d in response.json()["error"]["details"]), response.text
    await _nothing_stored(hub)
    assert (await hub.http.get("/v1/subscriptions")).json()["data"] == []


async def test_charge_without_a_known_address(hub: HubClient):
    body = {"customerNumber": "NEW", "currency": "EUR", "items": [_item()]}
    response = await post(hub, "/v1/charges", body)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["billToAddress"]
    await _nothing_stored(hub)


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ({"currency": "EUX"}, "currency"),
        ({"vatPercent": 120}, "vatPercent"),
        ({"components": []}, "fee"),
        ({"interval": "week", "fee": 1}, "interval"),
        ({"minimum": 10, "maximum": 5}, "maximum"),
        (
            {
                "components": [
                    {"type": "per_unit", "name": "a", "variable": "x", "unitPrice": 1},
                    {"type": "per_unit", "name": "b", "variable": "x", "unitPrice": 2},
                ]
            },
            "components",
        ),
        ({"components": [{"type": "mystery", "name": "a"}]}, "components"),
    ],
)
async def test_bad_price_model(hub: HubClient, model: dict[str, Any], field: str):
    body = fixture("price-model.car-sharing.json") | model
    response = await post(hub, "/v1/price-models", body)
    assert response.status_code == 422, response.text
    assert any(field in d["loc"] for d in response.json()["error"]["details"]), response.text
    assert (await hub.http.get("/v1/price-models")).json()["data"] == []


async def test_bad_price_model_patch_changes_nothing(hub: HubClient, car_model: str):
    response = await hub.http.patch(f"/v1/price-models/{car_model}", json={"vatPercent": 250})
    assert response.status_code == 422
    assert (await hub.http.get(f"/v1/price-models/{car_model}")).json()["version"] == 1
    missing = await hub.http.patch("/v1/price-models/pm_nope", json={"name": "x"})
    assert missing.status_code == 404
