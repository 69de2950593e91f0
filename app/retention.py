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
BUDGET_SECONDS = 1.0  # per run (half of it deleting), so a big purge spreads over many runs


class RetentionService:
    def __init__(self, store: Store, clock: Clock, days: int) -> None:
        self._store = store
        self._clock = clock
        self._keep_ms = days * 86_400_000
        self.partitions = Partitions(store, clock)

    async def run_due(self) -> int:
        """The periodic job (once a minute, app/hub.py): the weeks ahead made, then at most
        half a second of deleting."""
        await self.partitions.make_ahead()
        return await self.purge(BUDGET_SECONDS)

    async def purge(self, budget_s: float = float("inf")) -> int:
        cutoff = self._clock.now_ms() - self._keep_ms
        deadline = time.monotonic() + budget_s
        removed = await self.partitions.drop_expired(cutoff)
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
                # Half the time deleting at most: live traffic keeps the database the other half.
                await asyncio.sleep(time.monotonic() - started)
        return removed
