"""Retention: events, deliveries and attempts older than BILLHOOK_RETENTION_DAYS go. On
PostgreSQL whole weeks of attempts and deliveries are dropped first (app/partitions.py); then,
on both backends, what is left goes in small batches, oldest first: attempts, then finished
deliveries without attempts, then events without deliveries, then queue ingest's dead letters.
Events that carry billing information, and invoices, are never purged."""

from __future__ import annotations

import asyncio
import time

from app.clock import Clock
from app.ids import id_floor
from app.partitions import Partitions
from app.store import Store

BATCH = 1000
BUDGET_SECONDS = 1.0  # per run, so a big purge spreads over many runs
# Seconds of rest per second of deleting. SQLite deletes everything in batches: half the time.
# On PostgreSQL the weeks dropped whole were the bulk, and what is left (events, mostly) can go
# slowly: its deletes write every touched page to the WAL again, which live commits wait behind.
REST = {False: 1.0, True: 3.0}


class RetentionService:
    def __init__(self, store: Store, clock: Clock, days: int) -> None:
        self._store = store
        self._clock = clock
        self._keep_ms = days * 86_400_000
        self.partitions = Partitions(store, clock)

    async def run_due(self) -> int:
        """The periodic job (once a minute, app/hub.py): the weeks ahead made, then a second of
        paced deleting at most."""
        await self.partitions.make_ahead()
        return await self.purge(BUDGET_SECONDS)

    async def purge(self, budget_s: float = float("inf")) -> int:
        cutoff = self._clock.now_ms() - self._keep_ms
        deadline = time.monotonic() + budget_s
        removed = await self.partitions.drop_expired(cutoff)
        rest = REST[self._store.retention.partitioned]
        tables = (("attempts", "att"), ("deliveries", "dlv"), ("events", "evt"),
                  ("dead_letters", "dl"))  # fmt: skip
        for table, prefix in tables:
            after, before = "", id_floor(prefix, cutoff)
            while time.monotonic() < deadline:
                started = time.monotonic()
                gone, after = await self._store.retention.purge(table, after, before, BATCH)
                removed += gone
                if gone < BATCH:
                    break
                # Live traffic keeps the database the rest of the time.
                await asyncio.sleep(rest * (time.monotonic() - started))
        return removed
