"""Shared fixtures: a real hub on SQLite in tmp_path, an HTTP client, real loopback receivers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop
from starlette.applications import Starlette

from app.config import Settings
from app.hub import Hub
from app.main import create_app
from app.testing import FrozenClock, Receiver
from subscribers.receiver import WebhookReceiver

API_KEY = "bh_test_default_key"
ADMIN_TOKEN = "admin-token-for-tests"
START_MS = 1_795_000_000_000  # 2026-11-18, a fixed "now" for frozen-clock tests


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path}/billhook.db",
        "api_key": API_KEY,
        "admin_token": ADMIN_TOKEN,
        "run_worker": False,
        "egress_allow": "127.0.0.0/8,::1/128",
        "retry_schedule": "0s,0s,0s",
        "request_timeout": 2.0,
        "connect_timeout": 1.0,
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """The loop `billhook serve` runs on (uvloop), so tests exercise the production loop."""
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


class HubClient:
    """The app under test: its hub (to drive the worker) and an authenticated HTTP client."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient) -> None:
        self.app = app
        self.http = client

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.hub
        return hub

    async def drain(self) -> int:
        return await self.hub.worker.drain()

    async def endpoint(self, url: str, **fields: Any) -> dict[str, Any]:
        response = await self.http.post("/v1/endpoints", json={"url": url, **fields})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def publish(self, event_type: str, parameters: dict[str, Any], **extra: Any) -> Any:
        body = {"type": event_type, "parameters": parameters, **extra}
        response = await self.http.post("/v1/events", json=body)
        assert response.status_code == 202, response.text
        return response.json()


HubFactory = Callable[..., Any]


@pytest.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start hubs with setting overrides (and an optional clock); all are stopped at the end."""
    import contextlib

    async with contextlib.AsyncExitStack() as stack:

        async def start(clock: FrozenClock | None = None, **overrides: Any) -> HubClient:
            app = create_app(make_settings(tmp_path, **overrides), clock)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app),
                base_url="http://hub.test",
                headers={"authorization": f"Bearer {API_KEY}"},
            )
            await stack.enter_async_context(client)
            return HubClient(app, client)

        yield start


@pytest.fixture
async def hub(hub_factory: Callable[..., Any]) -> HubClient:
    client: HubClient = await hub_factory()
    return client


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, Receiver]]:
    """The reference receiver (verifies, de-duplicates, stores) on a real loopback port."""
    app = WebhookReceiver()
    async with Receiver(app.app, "/webhooks") as server:
        yield app, server


def postgres_url() -> str | None:
    return os.environ.get("BILLHOOK_TEST_POSTGRES_URL") or None
