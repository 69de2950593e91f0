"""Operational routes: /healthz, /metrics, and an OpenAPI document that matches the routes."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Route

from app.api import ROUTES
from app.api.openapi import document_path
from app.models import AttemptPage, EndpointOut, ErrorOut, EventAccepted, EventOut
from tests.conftest import HubClient


async def test_healthz_needs_no_key(hub: HubClient):
    response = await hub.http.get("/healthz", headers={"authorization": ""})
    assert response.status_code == 200 and response.json()["status"] == "ok"


async def test_metrics_count_events_and_attempts(hub: HubClient, receiver):
    app, server = receiver
    app.set_secret((await hub.endpoint(server.url))["secret"])
    before = _samples((await hub.http.get("/metrics")).text)
    await hub.publish("t", {})
    await hub.drain()
    after = _samples((await hub.http.get("/metrics")).text)
    assert after["billhook_events_published_total"] == before["billhook_events_published_total"] + 1
    key = 'billhook_delivery_attempts_total{outcome="success"}'
    assert after[key] == before.get(key, 0) + 1
    assert after["billhook_oldest_due_delivery_age_seconds"] == 0


def _samples(text: str) -> dict[str, float]:
    rows = (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {name: float(value) for name, value in rows}


async def test_every_v1_route_is_in_the_openapi_document(hub: HubClient):
    spec = (await hub.http.get("/openapi.json")).json()
    for route in ROUTES:
        if isinstance(route, Route) and route.path.startswith("/v1"):
            for method in (route.methods or set()) - {"HEAD"}:
                path = document_path(route.path)
                assert method.lower() in spec["paths"][path], (method, route.path)
    create = spec["paths"]["/v1/endpoints"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/EndpointCreate"
    )
    assert "EndpointCreate" in spec["components"]["schemas"]


async def test_docs_load_everything_from_the_hub_itself(hub: HubClient):
    """/docs loaded its viewer from a CDN (unpinned) and was blank offline: every script and
    stylesheet it names is now served by the hub, and the page allows no other origin."""
    page = await hub.http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 3 and not [a for a in assets if "//" in a]
    for asset in assets:
        answer = await hub.http.get(asset)
        assert answer.status_code == 200 and len(answer.content) > 0, asset
    start = (await hub.http.get("/docs/start.js")).text
    assert "/openapi.json" in start and "validatorUrl: null" in start


async def test_answers_match_their_declared_models(hub: HubClient, receiver):
    """The OpenAPI models are the real shapes: answers validate against them (extra='forbid')."""
    app, server = receiver
    created = await hub.endpoint(server.url)
    app.set_secret(created["secret"])
    EndpointOut.model_validate(created)
    await hub.declare("t")
    accepted = await hub.http.post("/v1/events", json={"type": "t", "parameters": {"a": 1}})
    EventAccepted.model_validate(accepted.json())
    await hub.drain()
    detail: dict[str, Any] = (await hub.http.get(f"/v1/events/{accepted.json()['id']}")).json()
    EventOut.model_validate(detail)
    delivery_id = detail["deliveries"][0]["id"]
    AttemptPage.model_validate(
        (await hub.http.get(f"/v1/deliveries/{delivery_id}/attempts")).json()
    )
    ErrorOut.model_validate((await hub.http.get("/v1/events/evt_missing")).json())
