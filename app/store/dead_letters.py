"""Messages queue ingest could not accept, kept with their error for the console."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.store.connector import Connector, Row, Tx


class DeadLetters:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def add(self, rows: Sequence[dict[str, Any]]) -> None:
        """`rows`: the columns of dead_letters. A message already kept (a redelivery of the
        same message) is not kept twice."""

        async def work(tx: Tx) -> None:
            await tx.executemany("dead_letter_insert", rows)

        await self._db.transact(work)

    async def page(self, tenant_id: str, cursor: str | None, limit: int) -> list[Row]:
        """Newest first."""
        params = {"tenant_id": tenant_id, "cursor": cursor, "limit": limit}
        return await self._db.fetch("dead_letters_page", params)

    async def count(self, tenant_id: str) -> int:
        row = await self._db.fetchrow("dead_letters_count", {"tenant_id": tenant_id})
        return int(row["n"]) if row else 0
