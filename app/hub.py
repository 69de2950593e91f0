"""The running hub: settings, store, services and worker wired together once."""

from __future__ import annotations

from dataclasses import dataclass

from app.clock import Clock, SystemClock
from app.config import Settings
from app.delivery import Deliverer
from app.egress import EgressPolicy
from app.endpoints import EndpointCache, EndpointService
from app.events import EventService
from app.store import Store, open_store
from app.tenants import Tenancy
from app.worker import Worker


@dataclass
class Hub:
    settings: Settings
    clock: Clock
    store: Store
    deliverer: Deliverer
    tenancy: Tenancy
    endpoints: EndpointService
    events: EventService
    worker: Worker

    @classmethod
    async def start(cls, settings: Settings, clock: Clock | None = None) -> Hub:
        """Open and migrate the store, seed the default tenant, build the services."""
        clock = clock or SystemClock()
        store = await open_store(settings.database_url, migrate_now_ms=clock.now_ms())
        tenancy = Tenancy(store, clock, settings.admin_token)
        await tenancy.bootstrap(settings.api_key)
        cache = EndpointCache(store)
        deliverer = Deliverer.create(settings, clock)
        endpoints = EndpointService(store, clock, EgressPolicy(settings.egress_allow), cache)
        events = EventService(store, clock, cache)
        worker = Worker(store, deliverer, clock, settings)
        events.on_commit = worker.notify
        return cls(settings, clock, store, deliverer, tenancy, endpoints, events, worker)

    async def close(self) -> None:
        await self.deliverer.close()
        await self.store.close()
