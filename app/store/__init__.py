"""The Store: domain verbs over one connector; the database is also the delivery queue."""

from __future__ import annotations

from collections.abc import Callable

from app.errors import StoreUnavailable
from app.sealing import Sealer
from app.store import queries
from app.store.billing import BillingInformation, Counters, PriceModels, Subscriptions
from app.store.connector import Connector, IntegrityError, StoreMissing, StoreUnusable
from app.store.console import Console
from app.store.dead_letters import DeadLetters
from app.store.deliveries import Deliveries
from app.store.endpoints import Endpoints
from app.store.event_types import EventTypes
from app.store.events import Events
from app.store.invoices import Invoices
from app.store.jobs import Jobs
from app.store.replays import Replays
from app.store.retention import Retention
from app.store.subscription_changes import SubscriptionChanges
from app.store.tenants import Tenants

__all__ = [
    "IntegrityError",
    "Store",
    "StoreMissing",
    "StoreUnavailable",
    "StoreUnusable",
    "connector_for",
    "open_store",
]


class Store:
    def __init__(self, connector: Connector, sealer: Sealer | None = None) -> None:
        """`sealer` seals and opens endpoint secrets; without one (migrations, tools that
        never touch a secret) a secret read or written is an error, never a plain value."""
        self.db = connector
        self.tenants = Tenants(connector)
        self.endpoints = Endpoints(connector, sealer)
        self.events = Events(connector)
        self.deliveries = Deliveries(connector, sealer)
        self.counters = Counters(connector)
        self.price_models = PriceModels(connector)
        self.billing = BillingInformation(connector)
        self.subscriptions = Subscriptions(connector)
        self.changes = SubscriptionChanges(connector)
        self.event_types = EventTypes(connector)
        self.replays = Replays(connector)
        self.retention = Retention(connector)
        self.invoices = Invoices(connector)
        self.jobs = Jobs(connector)
        self.console = Console(connector)
        self.dead_letters = DeadLetters(connector)

    async def migrate(self, now_ms: int) -> list[int]:
        """Apply pending forward-only migrations; returns the versions applied."""
        return await self.db.migrate(queries.migrations(self.db.dialect), now_ms)

    def on_due(self, wake: Callable[[], None]) -> None:
        """Call `wake` when any process commits deliveries that are due (PostgreSQL: LISTEN;
        SQLite: nothing to do, one process writes the file)."""
        self.db.listen("billhook_due", wake)

    async def ping(self) -> None:
        await self.db.fetch("ping")

    async def close(self) -> None:
        await self.events.close()
        await self.db.close()


def connector_for(url: str, create: bool = True, pool_size: int = 10) -> Connector:
    if url.startswith("sqlite:///"):
        from app.store.sqlite import SqliteConnector

        return SqliteConnector(url.removeprefix("sqlite:///"), create)
    if url.startswith(("postgresql://", "postgres://")):
        from app.store.postgres import PostgresConnector

        return PostgresConnector(url, create, pool_size)
    raise ValueError(f"unsupported database URL {url!r} (use sqlite:///path or postgresql://…)")


async def open_store(
    url: str,
    *,
    migrate_now_ms: int | None = None,
    create: bool = True,
    pool_size: int = 10,
    sealer: Sealer | None = None,
) -> Store:
    """Open (and, given a time, migrate) the store behind a BILLHOOK_DATABASE_URL; without
    `create`, a database that is not there is StoreMissing (operator commands)."""
    connector = connector_for(url, create, pool_size)
    await connector.open()
    store = Store(connector, sealer)
    if migrate_now_ms is not None:
        await store.migrate(migrate_now_ms)
    return store
