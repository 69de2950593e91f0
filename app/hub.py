"""The running hub: settings, store, services and worker wired together once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.access import ConsoleAccess
from app.billing.applying import ChangeApplier
from app.billing.bills import BillService
from app.billing.changes import ChangeService
from app.billing.drafts import DraftService
from app.billing.price_models import PriceModelService
from app.billing.service import BillingService
from app.catalog import Catalog
from app.clock import Clock, SystemClock
from app.config import Settings
from app.delivery import Deliverer
from app.egress import EgressPolicy
from app.endpoints import EndpointService, endpoint_cache
from app.events import EventService
from app.ingest.letters import DeadLetterService
from app.ingest.runner import Ingest
from app.intake import Intake
from app.invoicing.rebills import RebillService
from app.invoicing.service import InvoiceService
from app.periodic import Job, Periodic
from app.replay_runner import ReplayRunner
from app.replays import ReplayService
from app.retention import RetentionService
from app.sealing import Sealer
from app.store import Store, open_store
from app.tenant_settings import TenantSettingsService
from app.tenants import Tenancy
from app.worker import Worker, rules_for


@dataclass
class Hub:
    settings: Settings
    clock: Clock
    store: Store
    deliverer: Deliverer
    tenancy: Tenancy
    endpoints: EndpointService
    events: EventService
    price_models: PriceModelService
    billing: BillingService
    bills: BillService
    invoices: InvoiceService
    replays: ReplayService
    worker: Worker
    periodic: Periodic
    access: ConsoleAccess
    drafts: DraftService
    rebills: RebillService
    changes: ChangeService
    catalog: Catalog
    sealer: Sealer
    intake: Intake
    dead_letters: DeadLetterService
    tenant_settings: TenantSettingsService
    ingest: Ingest | None = None  # queue ingest, when this process runs it (BILLHOOK_INGEST)
    background: asyncio.Task[None] | None = None  # the worker's loops, when this process runs them
    stopping: bool = False  # stop_background was called: the loops ending is no death

    @classmethod
    async def start(
        cls, settings: Settings, clock: Clock | None = None, *, create_store: bool = True
    ) -> Hub:
        """Open and migrate the store, seal secrets still at rest in plain text (or under an
        older key), seed the default tenant, build the services."""
        settings.require_secret_key()
        clock = clock or SystemClock()
        sealer = Sealer(settings.secret_key)
        store = await open_store(
            settings.database_url,
            migrate_now_ms=clock.now_ms(),
            create=create_store,
            pool_size=settings.database_pool,
            sealer=sealer,
        )
        try:
            await store.endpoints.reseal()
            tenancy = Tenancy(store, clock, settings.admin_token)
            await tenancy.bootstrap(settings.api_key)
        except BaseException:
            await store.close()  # a failed start leaves nothing open
            raise
        cache = endpoint_cache(store)
        deliverer = Deliverer.create(settings, clock)
        catalog = Catalog(store, clock)
        endpoints = EndpointService(
            store, clock, EgressPolicy(settings.egress_allow), cache, catalog.check_subscription
        )
        events = EventService(store, clock, cache)
        worker = Worker(store, deliverer, clock, settings)
        events.on_commit = worker.notify
        if settings.run_worker:
            store.on_due(worker.notify)  # commits of other processes wake it too
        events.rules = rules_for(settings)
        worker.on_endpoints_changed = cache.invalidate
        price_models = PriceModelService(store, clock)
        billing = BillingService(store, clock, events, price_models, settings.timezone)
        invoices = InvoiceService(store, clock, events, billing.today, settings.finalize_after)
        bills = BillService(store, clock, billing, invoices)
        drafts = DraftService(store, clock, events, billing, bills, invoices)
        applier = ChangeApplier(store, clock, events, billing, bills, drafts, invoices)
        changes = ChangeService(store, clock, billing, bills, applier, invoices, events)
        lease_ms = round(settings.lease_seconds * 1000)

        async def probes() -> int:
            """Failing endpoints whose probe is due send one held delivery."""
            now = clock.now_ms()
            probed = await store.endpoints.probe(now, now + lease_ms)
            if probed:
                worker.notify()
            return probed

        replays = ReplayService(store, clock)
        replays.on_enqueue = worker.notify
        runner = ReplayRunner(store, clock)
        runner.on_enqueue = worker.notify
        retention = RetentionService(store, clock, settings.retention_days)
        periodic = Periodic(
            [
                # Changes first: one dated on a period's start prices that period.
                Job("subscription-changes", changes.run_due),
                Job("subscriptions", bills.run_due),
                Job("invoices", invoices.run_due, every_ms=60_000),
                Job("replays", runner.run_due),
                Job("probes", probes),
                Job("leases", endpoints.lapse_leases),
                Job("retention", retention.run_due, every_ms=60_000),
            ],
            settings.poll_interval,
            clock,
            store.jobs,
        )
        hub = cls(
            settings,
            clock,
            store,
            deliverer,
            tenancy,
            endpoints,
            events,
            price_models,
            billing,
            bills,
            invoices,
            replays,
            worker,
            periodic,
            ConsoleAccess(store, clock, tenancy, sealer),
            drafts,
            RebillService(store, clock, events, invoices, billing.today),
            changes,
            catalog,
            sealer,
            Intake(catalog, events, billing),
            DeadLetterService(store),
            TenantSettingsService(store, catalog, invoices.finalize_after_ms),
        )
        if settings.run_ingest and settings.ingest:
            hub.ingest = Ingest(
                settings.ingest, hub.intake, store, clock, failpoint=settings.failpoint
            )
        return hub

    async def run_background(self) -> None:
        """This process's loops: the worker's (deliveries, timed work such as subscription
        cycles) and queue ingest's, as configured. When one ends other than by
        stop_background, the others are stopped too, and the first one's exception is raised
        (or a RuntimeError if it just returned)."""
        loops = []
        if self.settings.run_worker:
            loops.append(asyncio.create_task(self.worker.run(), name="deliveries"))
            loops.append(asyncio.create_task(self.periodic.run(), name="timed jobs"))
        if self.ingest is not None:
            loops.append(asyncio.create_task(self.ingest.run(), name="queue ingest"))
        done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
        self._halt()
        await asyncio.gather(*loops, return_exceptions=True)
        for loop in done:
            if not loop.cancelled() and loop.exception() is not None:
                raise loop.exception()  # type: ignore[misc]
        if not self.stopping:
            raise RuntimeError(f"the {next(iter(done)).get_name()} loop returned")

    def start_background(self, on_death: Callable[[BaseException | None], None]) -> None:
        """Run the worker's loops as a task of this process; `on_death` is told if they end
        other than by stop_background (an exception, or returning): the process must not
        keep accepting work nobody delivers."""
        task = asyncio.create_task(self.run_background(), name="worker")
        self.background = task

        def watch(done: asyncio.Task[None]) -> None:
            if self.stopping:
                return
            on_death(None if done.cancelled() else done.exception())

        task.add_done_callback(watch)

    async def liveness(self) -> dict[str, Any]:
        """What /healthz says: the store answers, this process's worker runs, how far behind
        the workers are."""
        await self.events.ping()
        now = self.clock.now_ms()
        due = await self.events.oldest_due(now)
        worker = None
        if self.background is not None:
            running = not self.background.done()
            age = round(time.monotonic() - self.worker.last_turn, 3)
            worker = {"running": running, "last_turn_age_s": age}
        stopped = worker is not None and not worker["running"]
        return {
            "status": "worker_stopped" if stopped else "ok",
            "worker": worker,
            "oldest_due_age_s": 0.0 if due is None else max(0.0, (now - due) / 1000),
        }

    def stop_background(self) -> None:
        self.stopping = True
        self._halt()

    def _halt(self) -> None:
        self.worker.stop()
        self.periodic.stop()
        if self.ingest is not None:
            self.ingest.stop()

    async def close(self) -> None:
        await self.deliverer.close()
        await self.store.close()
