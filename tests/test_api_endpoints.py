"""/v1/endpoints over HTTP on a real SQLite store: CRUD, secrets, rotation, test ping."""

from __future__ import annotations

import time

from standardwebhooks.webhooks import Webhook

from app.testing import FrozenClock
from tests.conftest import START_MS, HubClient


async def test_create_answers_the_endpoint_with_its_secret(hub: HubClient):
    created = await hub.endpoint(
        "http://127.0.0.1:9/hook",
        description="ERP",
        event_types=["subscriptions/billingInformationAvailable"],
        filter={"customerNumber": "CUST-1"},
        metadata={"team": "billing"},
        rate_limit_per_s=50,
        ordered=True,
    )
    assert created["id"].startswith("ep_")
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["subscriptions/billingInformationAvailable"]
    assert created["filter"] == {"customerNumber": "CUST-1"}
    assert (created["rate_limit_per_s"], created["ordered"], created["status"]) == (
        50,
        True,
        "active",
    )
    fetched = (await hub.http.get(f"/v1/endpoints/{created['id']}")).json()
    assert "secret" not in fetched
    assert fetched["metadata"] == {"team": "billing"}


async def test_metadata_numbers_are_kept_as_sent(hub: HubClient):
    """A number with a fraction in metadata was a 500 (orjson cannot write a Decimal), and one
    read back became a float (1.10 → 1.1)."""
    body = b'{"url": "http://127.0.0.1:9/hook", "metadata": {"fee": 1.10, "big": 1E+3}}'
    created = await hub.http.post("/v1/endpoints", content=body)
    assert created.status_code == 201, created.text
    fetched = await hub.http.get(f"/v1/endpoints/{created.json()['id']}")
    assert b'"metadata":{"fee":1.10,"big":1000}' in fetched.content


async def test_list_is_paginated_newest_first(hub: HubClient):
    ids = [(await hub.endpoint(f"http://127.0.0.1:9/{n}"))["id"] for n in range(5)]
    first = (await hub.http.get("/v1/endpoints?limit=2")).json()
    assert [e["id"] for e in first["data"]] == ids[::-1][:2]
    second = (await hub.http.get(f"/v1/endpoints?limit=2&cursor={first['next_cursor']}")).json()
    third = (await hub.http.get(f"/v1/endpoints?limit=2&cursor={second['next_cursor']}")).json()
    assert [e["id"] for e in second["data"] + third["data"]] == ids[::-1][2:]
    assert third["next_cursor"] is None


async def test_patch_changes_only_the_fields_sent(hub: HubClient):
    ep = await hub.endpoint("http://127.0.0.1:9/a", description="before", event_types=["a"])
    response = await hub.http.patch(f"/v1/endpoints/{ep['id']}", json={"description": "after"})
    assert response.status_code == 200
    assert response.json()["description"] == "after"
    assert response.json()["event_types"] == ["a"]
    back_to_all = await hub.http.patch(f"/v1/endpoints/{ep['id']}", json={"event_types": None})
    assert back_to_all.json()["event_types"] is None


async def test_disable_and_enable(hub: HubClient):
    ep = await hub.endpoint("http://127.0.0.1:9/a")
    off = (await hub.http.patch(f"/v1/endpoints/{ep['id']}", json={"status": "disabled"})).json()
    assert (off["status"], off["disabled_reason"]) == ("disabled", "manual")
    on = (await hub.http.patch(f"/v1/endpoints/{ep['id']}", json={"status": "active"})).json()
    assert (on["status"], on.get("disabled_reason")) == ("active", None)


async def test_delete_hides_the_endpoint_and_cancels_its_pending_deliveries(hub: HubClient):
    ep = await hub.endpoint("http://127.0.0.1:9/a")
    event = await hub.publish("t", {})
    assert (await hub.http.delete(f"/v1/endpoints/{ep['id']}")).status_code == 204
    assert (await hub.http.get(f"/v1/endpoints/{ep['id']}")).status_code == 404
    assert (await hub.http.delete(f"/v1/endpoints/{ep['id']}")).status_code == 404
    detail = (await hub.http.get(f"/v1/events/{event['id']}")).json()
    assert [d["status"] for d in detail["deliveries"]] == ["cancelled"]
    assert await hub.drain() == 0


async def test_secret_rotation_keeps_the_old_secret_for_24_hours(hub_factory, receiver):
    """After rotation both secrets sign; a receiver still on the old one keeps verifying."""
    clock = FrozenClock(int(time.time() * 1000))
    hub: HubClient = await hub_factory(clock=clock)
    app, server = receiver
    ep = await hub.endpoint(server.url, event_types=["t"])  # not the operational events
    old = ep["secret"]
    rotated = (await hub.http.post(f"/v1/endpoints/{ep['id']}/secret/rotate")).json()
    assert rotated["secret"] != old and rotated["secret"].startswith("whsec_")
    assert rotated["previous_secret_expires_at"] is not None
    assert (await hub.http.get(f"/v1/endpoints/{ep['id']}/secret")).json() == rotated

    app.set_secret(old)
    await hub.publish("t", {"n": 1})
    await hub.drain()
    assert app.inbox.count() == 1  # the old secret still verifies

    clock.advance(24 * 3600 + 1)
    await hub.publish("t", {"n": 2})
    await hub.drain()
    assert app.inbox.count() == 1  # after the overlap only the new secret signs
    app.set_secret(rotated["secret"])
    await hub.publish("t", {"n": 3})
    await hub.drain()
    assert app.inbox.count() == 2


async def test_test_ping_sends_a_signed_webhook_test_and_answers_the_attempt(
    hub: HubClient, receiver
):
    app, server = receiver
    ep = await hub.endpoint(server.url)
    app.set_secret(ep["secret"])
    response = await hub.http.post(f"/v1/endpoints/{ep['id']}/test")
    assert response.status_code == 200
    attempt = response.json()
    assert (attempt["status_code"], attempt["error"], attempt["trigger"]) == (200, None, "test")
    [received] = app.inbox.latest()
    assert received["type"] == "webhook.test"
    assert received["payload"]["parameters"]["endpointId"] == ep["id"]


async def test_test_ping_to_a_dead_endpoint_reports_the_failure_without_retrying(hub: HubClient):
    from app.testing import free_port

    ep = await hub.endpoint(f"http://127.0.0.1:{free_port()}/gone")
    attempt = (await hub.http.post(f"/v1/endpoints/{ep['id']}/test")).json()
    assert attempt["error"] == "connect_error"
    assert await hub.drain() == 0


async def test_secrets_verify_with_the_standard_library(hub: HubClient, receiver):
    """The secret the API hands out is one the standardwebhooks library accepts as is."""
    ep = await hub.endpoint("http://127.0.0.1:9/a")
    Webhook(ep["secret"])  # raises on a malformed secret


async def test_foreign_tenant_ids_are_404(hub_factory):
    hub: HubClient = await hub_factory()
    created = await hub.http.post(
        "/v1/tenants",
        json={"name": "acme"},
        headers={"authorization": "Bearer admin-token-for-tests"},
    )
    acme_key = created.json()["api_key"]
    ep = await hub.endpoint("http://127.0.0.1:9/a")
    as_acme = {"authorization": f"Bearer {acme_key}"}
    for method, path in [
        ("GET", f"/v1/endpoints/{ep['id']}"),
        ("PATCH", f"/v1/endpoints/{ep['id']}"),
        ("DELETE", f"/v1/endpoints/{ep['id']}"),
        ("GET", f"/v1/endpoints/{ep['id']}/secret"),
        ("POST", f"/v1/endpoints/{ep['id']}/secret/rotate"),
        ("POST", f"/v1/endpoints/{ep['id']}/test"),
    ]:
        kwargs = {"json": {"description": "x"}} if method == "PATCH" else {}
        response = await hub.http.request(method, path, headers=as_acme, **kwargs)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"
    assert (await hub.http.get("/v1/endpoints", headers=as_acme)).json()["data"] == []
    assert (await hub.http.get(f"/v1/endpoints/{ep['id']}")).status_code == 200


async def test_start_ms_is_a_fixed_past_time():
    """Guards the frozen-clock fixtures: START_MS is in November 2026."""
    assert time.strftime("%Y-%m", time.gmtime(START_MS / 1000)) == "2026-11"


async def test_a_temporary_endpoints_lease_is_renewed_or_lapses(hub_factory):
    """A lease the listener renews (POST …/lease); once it lapses the hub disables the endpoint
    (lease_expired), cancels what it kept and matches no event to it again."""
    clock = FrozenClock(START_MS)
    hub = await hub_factory(clock=clock)
    kept = await hub.endpoint("http://127.0.0.1:9/kept")
    temporary = await hub.endpoint("http://127.0.0.1:9/tmp", lease_s=10)
    assert kept["lease_until"] is None and temporary["lease_until"]
    clock.advance(8)
    renewed = await hub.http.post(f"/v1/endpoints/{temporary['id']}/lease")
    assert renewed.status_code == 200 and renewed.json()["lease_until"] > temporary["lease_until"]
    assert (await hub.http.post(f"/v1/endpoints/{kept['id']}/lease")).status_code == 409
    early = await hub.publish("t", {"n": 1})
    assert early["deliveries"] == 2
    clock.advance(11)
    assert await hub.hub.endpoints.lapse_leases() == 1
    kept_for_it = (await hub.http.get(f"/v1/events/{early['id']}")).json()["deliveries"]
    assert {d["endpoint_id"]: d["status"] for d in kept_for_it}[temporary["id"]] == "cancelled"
    found = (await hub.http.get(f"/v1/endpoints/{temporary['id']}")).json()
    assert (found["status"], found["disabled_reason"]) == ("disabled", "lease_expired")
    late = await hub.publish("t", {"n": 2})
    assert late["deliveries"] == 1  # the kept endpoint only
    deliveries = (await hub.http.get(f"/v1/events/{late['id']}")).json()["deliveries"]
    assert [d["endpoint_id"] for d in deliveries] == [kept["id"]]
    assert (await hub.http.post(f"/v1/endpoints/{temporary['id']}/lease")).status_code == 409
    assert await hub.hub.endpoints.lapse_leases() == 0
