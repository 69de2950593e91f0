"""Leases on timed jobs, so one of many workers runs each job once per due moment."""

from __future__ import annotations

from app.store.connector import Connector, Tx


class Jobs:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def claim(self, name: str, now: int, lease_ms: int) -> bool:
        """True for the one caller that may run the due job now: its due time moves on by the
        lease, so that if the caller dies the job is due again once the lease runs out."""

        async def work(tx: Tx) -> bool:
            params = {"name": name, "now": now, "next": now + lease_ms}
            return bool(await tx.fetch("job_claim", params))

        return await self._db.transact(work, durable=False)

    async def due_at(self, name: str, when: int) -> None:
        """The job ran (or failed): when it is due next."""

        async def work(tx: Tx) -> None:
            await tx.execute("job_due_at", {"name": name, "due_at": when})

        await self._db.transact(work, durable=False)
