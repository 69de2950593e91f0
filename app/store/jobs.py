"""Leases on timed jobs, so one of many workers runs each job once per due moment."""

from __future__ import annotations

from app.store.connector import Connector, Tx


class Jobs:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def claim(self, name: str, now: int, every_ms: int) -> bool:
        """True for the one caller that moves the job's due time from now (or never) on."""

        async def work(tx: Tx) -> bool:
            params = {"name": name, "now": now, "next": now + every_ms}
            return bool(await tx.fetch("job_claim", params))

        return await self._db.transact(work, durable=False)
