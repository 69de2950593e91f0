"""Deleting old webhook traffic in small batches (never billing records)."""

from __future__ import annotations

from app.store.connector import Connector, Row, Tx


class Retention:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def purge(self, table: str, after: str, before: str, limit: int) -> tuple[int, str]:
        """One batch of rows with ids in (`after`, `before`) from `table`: how many went, and
        where the next batch starts. Each batch is its own short transaction, so writers are
        never held up for long; the next starts after this one's last id (keyset), never
        rescanning what is deleted but not yet vacuumed — on PostgreSQL each batch would
        otherwise walk every dead row before it, and a 2,000,000-row purge take hours."""
        if table not in ("attempts", "deliveries", "events", "dead_letters"):
            raise ValueError(table)

        async def work(tx: Tx) -> list[Row]:
            params = {"after": after, "before": before, "limit": limit}
            return await tx.fetch(f"purge_{table}", params)

        rows = await self._db.transact(work, durable=False)
        return len(rows), max((str(r["id"]) for r in rows), default=before)
