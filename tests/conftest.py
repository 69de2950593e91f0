"""Shared fixtures: a real hub on each backend (SQLite in tmp_path; PostgreSQL in a schema of its
own when BILLHOOK_TEST_POSTGRES_URL is set), an HTTP client, real loopback receivers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop
from starlette.applications import Starlette

from app.catalog import BUILT_IN
from app.config import Settings
from app.hub import Hub
from app.main import create_app
from app.sealing import Sealer
from app.testing import FrozenClock, Receiver
from subscribers.receiver import WebhookReceiver
from tests.brokers import jetstream, redis_client  # noqa: F401 (fixtures)

API_KEY = "bh_test_default_key"
SECRET_KEY = "bsk_test_secret_key_of_32_characters_or_more"
SEALER = Sealer([SECRET_KEY])  # for tests that open a store themselves
ADMIN_TOKEN = "admin-token-for-tests"
START_MS = 1_795_000_000_000  # 2026-11-18, a fixed "now" for frozen-clock tests


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path}/billhook.db",
        "api_key": API_KEY,
        "admin_token": ADMIN_TOKEN,
        "secret_key": (SECRET_KEY,),
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


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


# -- CI: with BILLHOOK_TEST_POSTGRES_URL set, a skipped PostgreSQL test fails the run; with
# BILLHOOK_TEST_BROWSER=required or BILLHOOK_TEST_BROKERS=required (.ci/run), a skipped browser
# or broker test does ---------------------------------------------------------------------------

_SKIPPED: dict[str, list[str]] = {"postgres": [], "browser": [], "brokers": []}
BROKERS = {"RabbitMQ": 5672, "NATS": 4222, "Redis": 6379}  # on 127.0.0.1 (.ci/run starts them)


@functools.cache
def unreachable_brokers() -> tuple[str, ...]:
    missing = []
    for broker, port in BROKERS.items():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            missing.append(broker)
    return tuple(missing)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if "brokers" in item.keywords and unreachable_brokers():
        pytest.skip(f"no {', '.join(unreachable_brokers())} on 127.0.0.1 (.ci/run starts them)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for kind, skipped in _SKIPPED.items():
        if report.skipped and kind in report.keywords:
            skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    required = {
        "postgres": ("BILLHOOK_TEST_POSTGRES_URL is set", postgres_url() is not None),
        "browser": (
            "BILLHOOK_TEST_BROWSER=required",
            os.environ.get("BILLHOOK_TEST_BROWSER") == "required",
        ),
        "brokers": (
            "BILLHOOK_TEST_BROKERS=required",
            os.environ.get("BILLHOOK_TEST_BROKERS") == "required",
        ),
    }
    for kind, (why, wanted) in required.items():
        if wanted and _SKIPPED[kind]:
            print(f"\n{len(_SKIPPED[kind])} {kind} test(s) skipped although {why}, "
                  f"e.g. {_SKIPPED[kind][0]}")  # fmt: skip
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def in_schema(url: str, schema: str) -> str:
    """The URL with a search_path: asyncpg passes unknown query parameters as settings."""
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """SQLite in tmp_path, or a fresh PostgreSQL schema dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/billhook.db"
        return
    async with postgres_schema() as url:
        yield url


@pytest.fixture
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL schema for tests that only make sense there (several processes)."""
    async with postgres_schema() as url:
        yield url


@contextlib.asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    base = postgres_url()
    if base is None:
        pytest.skip("PostgreSQL tests run when BILLHOOK_TEST_POSTGRES_URL is set")

    schema = await create_schema(base)
    try:
        yield in_schema(base, schema)
    finally:
        await drop_schema(base, schema)


async def create_schema(base: str) -> str:
    """A fresh schema's name (drop it with drop_schema)."""
    import asyncpg

    schema = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
    finally:
        await admin.close()
    return schema


async def drop_schema(base: str, schema: str) -> None:
    """On a connection of its own: the test's may have been cut by a database restart."""
    import asyncpg

    for _ in range(60):
        try:
            conn = await asyncpg.connect(base)
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(0.5)  # PostgreSQL restarting (the restart test)
            continue
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()
        return


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


class HubClient:
    """The app under test: its hub (to drive the worker) and an authenticated HTTP client."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient) -> None:
        self.app = app
        self.http = client
        self._declared: set[str] = set()

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.hub
        return hub

    async def drain(self) -> int:
        return await self.hub.worker.drain()

    async def endpoint(self, url: str, **fields: Any) -> dict[str, Any]:
        """Register an endpoint; types the tests make up ("t") are declared first, as a
        tenant declares its own (subscribing to an unknown type is refused)."""
        for name in fields.get("event_types") or ():
            await self.declare(name)
        response = await self.http.post("/v1/endpoints", json={"url": url, **fields})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def declare(self, event_type: str) -> None:
        """Types the tests make up are declared once, as a tenant declares its own (publishing
        an unknown type is refused)."""
        if event_type not in BUILT_IN and event_type not in self._declared:
            await self.http.post("/v1/event-types", json={"name": event_type})
            self._declared.add(event_type)

    async def publish(self, event_type: str, parameters: dict[str, Any], **extra: Any) -> Any:
        await self.declare(event_type)
        body = {"type": event_type, "parameters": parameters, **extra}
        response = await self.http.post("/v1/events", json=body)
        assert response.status_code == 202, response.text
        return response.json()


HubFactory = Callable[..., Any]
SEED_EVENT = (
    Path(__file__).resolve().parent.parent / "fixtures/billing-information-available.seed.json"
)


def seed_parameters(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Seed 003's parameters with some top-level fields changed: a body of the built-in type
    that holds to its schema (a published built-in type is checked)."""
    parameters: dict[str, Any] = json.loads(SEED_EVENT.read_bytes())["parameters"]
    return {**parameters, **(changes or {})}


@pytest.fixture
async def hub_factory(tmp_path: Path, database_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Start hubs with setting overrides (and an optional clock) on the test's backend; all are
    stopped at the end."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(clock: FrozenClock | None = None, **overrides: Any) -> HubClient:
            values = {"database_url": database_url, **overrides}
            app = create_app(make_settings(tmp_path, **values), clock)
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
