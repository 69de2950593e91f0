"""Reading queue ingest's dead letters (the console's page): each message kept with the error
that refused it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app import jsoncodec
from app.store import Store


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    source: str
    message_key: str
    body: str  # the first 64 KiB, as text
    body_bytes: int
    error: dict[str, Any]  # {"code", "message", "details"}
    created_at: int


class DeadLetterService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def page(self, tenant_id: str, cursor: str | None, limit: int) -> list[DeadLetter]:
        """Newest first."""
        rows = await self._store.dead_letters.page(tenant_id, cursor, limit)
        return [
            DeadLetter(
                id=r["id"],
                source=r["source"],
                message_key=r["message_key"],
                body=r["body"],
                body_bytes=int(r["body_bytes"]),
                error=jsoncodec.loads(r["error"]),
                created_at=int(r["created_at"]),
            )
            for r in rows
        ]
