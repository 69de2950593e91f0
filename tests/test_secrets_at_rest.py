"""Endpoint signing secrets are sealed at rest with BILLHOOK_SECRET_KEY (Fernet, app/sealing.py)
on SQLite and PostgreSQL: a copy of the database reveals none, deliveries still verify, the key
rotates (new first, old after; every start re-seals), plain secrets of an older database are
sealed at start, and the console keeps no signing secret in the database."""

from __future__ import annotations

import pytest

from app.sealing import PREFIX, Sealer, SealError
from app.testing import Receiver
from subscribers.receiver import WebhookReceiver
from tests.backends import rows
from tests.conftest import SECRET_KEY, HubClient

NEW_KEY = "bsk_the_new_key_after_rotation_0123456789"


async def raw_secrets(hub: HubClient) -> list[tuple[str, str | None]]:
    url = hub.hub.settings.database_url
    return [(r[0], r[1]) for r in await rows(url, "SELECT secret, previous_secret FROM endpoints")]


async def test_a_copy_of_the_database_reveals_no_secret_and_deliveries_verify(
    hub: HubClient, receiver: tuple[WebhookReceiver, Receiver]
):
    app, server = receiver
    endpoint = await hub.endpoint(server.url)
    rotated = (await hub.http.post(f"/v1/endpoints/{endpoint['id']}/secret/rotate")).json()
    app.set_secret(rotated["secret"])
    [(secret, previous)] = await raw_secrets(hub)
    assert secret.startswith(PREFIX) and previous is not None and previous.startswith(PREFIX)
    for plain in (endpoint["secret"], rotated["secret"]):
        assert plain not in secret + previous
        assert plain.removeprefix("whsec_") not in secret + previous
    await hub.publish("t", {"n": 1})
    await hub.drain()
    assert app.inbox.count() == 1  # verified with the new secret by the reference receiver


async def test_a_rotated_key_reseals_everything_at_start_and_the_old_one_can_go(hub_factory):
    first = await hub_factory()
    endpoint = await first.endpoint("http://127.0.0.1:9/x")
    [(before, _)] = await raw_secrets(first)
    rotating = await hub_factory(secret_key=(NEW_KEY, SECRET_KEY))
    [(after, _)] = await raw_secrets(rotating)
    assert after != before and Sealer([NEW_KEY]).open(after) == endpoint["secret"]
    with pytest.raises(SealError):
        Sealer([SECRET_KEY]).open(after)  # the old key alone no longer opens it
    rotated = await hub_factory(secret_key=(NEW_KEY,))
    shown = await rotated.http.get(f"/v1/endpoints/{endpoint['id']}/secret")
    assert shown.json()["secret"] == endpoint["secret"]


async def test_plain_secrets_of_an_older_database_are_sealed_at_start(hub_factory):
    first = await hub_factory()
    endpoint = await first.endpoint("http://127.0.0.1:9/x")
    await rows(first.hub.settings.database_url,
               f"UPDATE endpoints SET secret = '{endpoint['secret']}'")  # fmt: skip
    again = await hub_factory()
    [(secret, _)] = await raw_secrets(again)
    assert secret.startswith(PREFIX) and endpoint["secret"] not in secret
    shown = await again.http.get(f"/v1/endpoints/{endpoint['id']}/secret")
    assert shown.json()["secret"] == endpoint["secret"]


async def test_a_key_that_opens_nothing_stops_the_start_with_what_to_do(hub_factory):
    first = await hub_factory()
    await first.endpoint("http://127.0.0.1:9/x")
    with pytest.raises(SealError, match="put back the key"):
        await hub_factory(secret_key=(NEW_KEY,))


async def test_the_console_keeps_no_signing_secret_in_the_database(hub: HubClient):
    url = hub.hub.settings.database_url
    if url.startswith("sqlite"):
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    tables = {r[0] for r in await rows(url, query)}
    assert "console_sessions" in tables and "hub_secrets" not in tables
