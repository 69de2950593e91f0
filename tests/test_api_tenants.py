"""Tenants and keys: the admin token manages them; keys are scoped and revocable."""

from __future__ import annotations

from pathlib import Path

from tests.backends import rows
from tests.conftest import ADMIN_TOKEN, HubClient

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_env_key_authenticates_the_default_tenant(hub: HubClient):
    assert (await hub.http.get("/v1/endpoints")).status_code == 200


async def test_create_tenant_shows_the_key_once_and_it_works(hub: HubClient):
    created = await hub.http.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)
    assert created.status_code == 201
    body = created.json()
    assert body["id"].startswith("tn_") and body["api_key"].startswith("bh_")
    as_acme = {"authorization": f"Bearer {body['api_key']}"}
    assert (await hub.http.get("/v1/endpoints", headers=as_acme)).status_code == 200
    listed = (await hub.http.get("/v1/tenants", headers=ADMIN)).json()["data"]
    assert {t["name"] for t in listed} == {"default", "acme"}
    assert all("api_key" not in t for t in listed)


async def test_keys_are_stored_only_as_hashes(hub: HubClient):
    created = (await hub.http.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)).json()
    url = hub.hub.settings.database_url
    if url.startswith("sqlite:///"):  # every byte of the database and its WAL
        db_path = Path(url.removeprefix("sqlite:///"))
        files = list(db_path.parent.glob(db_path.name + "*"))
        assert files
        for file in files:
            assert created["api_key"].encode() not in file.read_bytes()
    else:  # every column of every key row
        stored = await rows(url, "SELECT row_to_json(k)::text FROM api_keys k")
        assert stored and all(created["api_key"] not in r[0] for r in stored)


async def test_duplicate_tenant_name_is_409(hub: HubClient):
    await hub.http.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)
    again = await hub.http.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


async def test_additional_keys_and_revocation(hub: HubClient):
    tenant = (await hub.http.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)).json()
    extra = await hub.http.post(f"/v1/tenants/{tenant['id']}/keys", headers=ADMIN)
    assert extra.status_code == 201
    old = {"authorization": f"Bearer {tenant['api_key']}"}
    new = {"authorization": f"Bearer {extra.json()['api_key']}"}
    assert (await hub.http.get("/v1/events", headers=old)).status_code == 200
    assert (await hub.http.get("/v1/events", headers=new)).status_code == 200
    revoke = await hub.http.delete(
        f"/v1/tenants/{tenant['id']}/keys/{tenant['key_id']}", headers=ADMIN
    )
    assert revoke.status_code == 204
    assert (await hub.http.get("/v1/events", headers=old)).status_code == 401
    assert (await hub.http.get("/v1/events", headers=new)).status_code == 200
    again = await hub.http.delete(
        f"/v1/tenants/{tenant['id']}/keys/{tenant['key_id']}", headers=ADMIN
    )
    assert again.status_code == 404


async def test_admin_routes_need_the_admin_token(hub: HubClient):
    """A tenant key is not an admin token, and a wrong token is refused."""
    assert (await hub.http.get("/v1/tenants")).status_code == 401
    wrong = {"authorization": "Bearer nope"}
    assert (
        await hub.http.post("/v1/tenants", json={"name": "x"}, headers=wrong)
    ).status_code == 401
    assert (await hub.http.post("/v1/tenants/tn_nope/keys", headers=ADMIN)).status_code == 404


async def test_admin_routes_are_off_without_a_token(hub_factory):
    hub: HubClient = await hub_factory(admin_token=None)
    response = await hub.http.get("/v1/tenants", headers=ADMIN)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


async def test_events_are_tenant_scoped(hub: HubClient):
    tenant = (await hub.http.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)).json()
    as_acme = {"authorization": f"Bearer {tenant['api_key']}"}
    mine = await hub.publish("t", {"x": 1})
    assert (await hub.http.get(f"/v1/events/{mine['id']}", headers=as_acme)).status_code == 404
    assert (await hub.http.get("/v1/events", headers=as_acme)).json()["data"] == []
    # Idempotency keys are per tenant: acme may reuse the default tenant's key.
    body = {"type": "t", "parameters": {}, "id": "shared-key"}
    # …and declared types too: each tenant declares its own.
    await hub.http.post("/v1/event-types", json={"name": "t"}, headers=as_acme)
    assert (await hub.http.post("/v1/events", json=body)).status_code == 202
    assert (await hub.http.post("/v1/events", json=body, headers=as_acme)).status_code == 202
