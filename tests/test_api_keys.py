"""API keys are managed on purpose: a process's BILLHOOK_API_KEY is added at start and never
revokes another key (a second process with another key used to lock every running process
out); keys have names, a last use and a revocation time; a rotation keeps the old key working
for an overlap window; only an explicit API or CLI action revokes; a revoked key stays revoked
and the process says so; `billhook keys` on the database is the way back in."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from app.testing import FrozenClock
from tests.conftest import API_KEY, START_MS, HubClient, HubFactory
from tests.processes import KEY, hub_process
from tests.test_cli import billhook

OTHER_KEY = "bh_second_process_key_0123456789"


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def _keys(hub: HubClient, key: str = API_KEY) -> list[dict[str, Any]]:
    answer = await hub.http.get("/v1/keys", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def test_a_second_process_with_another_key_revokes_nothing(hub_factory: HubFactory):
    first: HubClient = await hub_factory()
    second: HubClient = await hub_factory(api_key=OTHER_KEY)
    for hub in (first, second):
        for key in (API_KEY, OTHER_KEY):
            assert (await hub.http.get("/v1/events", headers=bearer(key))).status_code == 200
    again: HubClient = await hub_factory()  # the first restarted with its own key
    assert (await again.http.get("/v1/events")).status_code == 200
    names = {k["name"] for k in await _keys(again)}
    assert names == {"BILLHOOK_API_KEY"} and len(await _keys(again)) == 2


async def test_keys_are_listed_with_name_and_last_use_never_the_key(hub: HubClient):
    created = await hub.http.post("/v1/keys", json={"name": "billing export"})
    assert created.status_code == 201
    new = created.json()
    assert new["api_key"].startswith("bh_") and new["name"] == "billing export"
    assert (await hub.http.get("/v1/events", headers=bearer(new["api_key"]))).status_code == 200
    listed = {k["id"]: k for k in await _keys(hub)}
    assert listed[new["id"]]["last_used_at"] and "api_key" not in listed[new["id"]]
    assert all(set(k) <= {"id", "tenant_id", "name", "created_at", "last_used_at",
                          "revoked_at"} for k in listed.values())  # fmt: skip


async def test_a_rotation_keeps_the_old_key_working_for_its_overlap(hub_factory: HubFactory):
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock)
    [env_key] = await _keys(hub)
    body = {"name": "rotated", "replaces": env_key["id"], "overlap_s": 3600}
    rotated = (await hub.http.post("/v1/keys", json=body)).json()
    hub.hub.tenancy._cache.clear()  # the 5-second key cache, as if it had lapsed
    assert (await hub.http.get("/v1/events")).status_code == 200, "inside the overlap"
    clock.advance(3601)
    hub.hub.tenancy._cache.clear()
    assert (await hub.http.get("/v1/events")).status_code == 401, "after the overlap"
    assert (await hub.http.get("/v1/events", headers=bearer(rotated["api_key"]))).status_code == 200


async def test_only_an_explicit_revocation_revokes_and_it_sticks(
    hub_factory: HubFactory, caplog: pytest.LogCaptureFixture
):
    hub: HubClient = await hub_factory()
    spare = (await hub.http.post("/v1/keys", json={"name": "spare"})).json()["api_key"]
    [env_key] = [k for k in await _keys(hub) if k["name"] == "BILLHOOK_API_KEY"]
    assert (await hub.http.delete(f"/v1/keys/{env_key['id']}")).status_code == 204
    assert (await hub.http.get("/v1/events")).status_code == 401
    with caplog.at_level(logging.WARNING):
        restarted: HubClient = await hub_factory()  # with the revoked key in its environment
    assert (await restarted.http.get("/v1/events")).status_code == 401, "it stays revoked"
    said = [r.getMessage() for r in caplog.records if "BILLHOOK_API_KEY is" in r.getMessage()]
    assert said and env_key["id"] in said[0] and "stays revoked" in said[0]
    assert (await restarted.http.get("/v1/events", headers=bearer(spare))).status_code == 200


async def test_an_unknown_key_to_replace_or_revoke_is_a_404_that_changes_nothing(hub: HubClient):
    body = {"name": "x", "replaces": "key_unknown"}
    assert (await hub.http.post("/v1/keys", json=body)).status_code == 404
    assert (await hub.http.delete("/v1/keys/key_unknown")).status_code == 404
    assert len(await _keys(hub)) == 1
    bad = await hub.http.post("/v1/keys", json={"name": "x", "overlap_s": -1})
    assert bad.status_code == 422 and len(await _keys(hub)) == 1


@pytest.mark.slow
async def test_billhook_keys_on_the_database_lets_an_operator_back_in(tmp_path: Any):
    """Every key revoked, no admin token: `billhook keys add` on the database makes one."""
    db = f"sqlite:///{tmp_path}/keys.db"
    async with hub_process(db) as hub:
        assert hub.url
        async with httpx.AsyncClient(base_url=hub.url) as http:
            [env_key] = (await http.get("/v1/keys", headers=bearer(KEY))).json()["data"]
            revoked = await http.delete(f"/v1/keys/{env_key['id']}", headers=bearer(KEY))
            assert revoked.status_code == 204
            code, out = await billhook(db, "keys", "add", "--name", "recovery")
            assert code == 0, out
            key_id, key = out.split()[-2:]
            answer = await http.get("/v1/events", headers=bearer(key))
            assert answer.status_code == 200 and key_id.startswith("key_")
    code, out = await billhook(db, "keys", "list")
    assert code == 0 and "recovery" in out and "BILLHOOK_API_KEY" in out, out


@pytest.mark.slow
async def test_two_processes_with_different_keys_on_postgres_both_keep_working(
    postgres_database: str,
):
    async with (
        hub_process(postgres_database) as first,
        hub_process(postgres_database, BILLHOOK_API_KEY=OTHER_KEY) as second,
    ):
        for process in (first, second):
            assert process.url
            async with httpx.AsyncClient(base_url=process.url) as http:
                for key in (KEY, OTHER_KEY):
                    answer = await http.get("/v1/events", headers=bearer(key))
                    said = b"".join(process.said).decode()
                    assert answer.status_code == 200, (process.url, key, said)
