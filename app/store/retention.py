"""Deleting old webhook traffic in small batches (never billing records)."""

from __future__ import annotations

from app.store.connector import Connector, Tx


class Retention:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def purge(self, table: str, before: str, limit: int) -> int:
        """One batch of rows older than `before` (an id floor) from `table`; how many went.

        Each batch is its own short transaction, so writers are never held up for long.
        """
        if table not in ("attempts", "deliveries", "events"):
            raise ValueError(table)

        async def work(tx: Tx) -> int:
            return len(await tx.fetch(f"purge_{table}", {"before": before, "limit": limit}))

        return await self._db.transact(work, durable=False)
