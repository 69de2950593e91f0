"""Deleting old webhook traffic: in small batches (never billing records), and on PostgreSQL by
whole partitions of time (migration 0015)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.store.connector import Connector, Row, Tx

_RANGE = re.compile(r"FOR VALUES FROM \((.+)\) TO \((.+)\)")
LOCK_WAIT = "50ms"  # how long making or dropping a partition may queue live writers


@dataclass(frozen=True, slots=True)
class Partition:
    """A partition of `table` for ids in [lo, hi); None is unbounded (the history partition
    starts at MINVALUE); the DEFAULT partition has `default` set and no bounds."""

    table: str
    name: str
    lo: str | None
    hi: str | None
    default: bool
    estimated_rows: int


def _bound(text: str) -> str | None:
    return None if text in ("MINVALUE", "MAXVALUE") else text.strip("'")


class Retention:
    def __init__(self, db: Connector) -> None:
        self._db = db

    @property
    def partitioned(self) -> bool:
        """Whether traffic is partitioned by time here (PostgreSQL); SQLite deletes in batches."""
        return self._db.dialect == "postgres"

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

    async def partitions(self, table: str) -> list[Partition]:
        """`table`'s partitions (none on SQLite)."""
        if not self.partitioned:
            return []
        found = []
        for row in await self._db.fetch("partitions_of", {"parent": table}):
            match = _RANGE.fullmatch(str(row["bound"]))
            lo, hi = (_bound(match[1]), _bound(match[2])) if match else (None, None)
            found.append(Partition(table, str(row["name"]), lo, hi, match is None,
                                   int(row["estimated_rows"])))  # fmt: skip
        return found

    async def make_partition(self, table: str, name: str, lo: str, hi: str) -> bool:
        """A partition for ids in [lo, hi); False when the default partition already holds
        some of them (they stay there), another process made it first, or the parent's lock
        was not had within LOCK_WAIT."""
        params = {"parent": table, "name": name, "lo": lo, "hi": hi, "wait": LOCK_WAIT}
        row = await self._db.fetchrow("make_partition", params)
        return bool(row and row["made"])

    async def drop_partition(self, partition: Partition) -> bool:
        """Drops it whole; False (tried again later) when a delivery in it is still open or
        the lock was not had within LOCK_WAIT. A week of deliveries first loses the attempts
        made for it in a later week of attempts."""
        if partition.table == "deliveries":
            await self._db.fetch(
                "purge_late_attempts", {"lo": partition.lo or "", "hi": partition.hi}
            )
        row = await self._db.fetchrow(
            "drop_partition",
            {"parent": partition.table, "name": partition.name, "wait": LOCK_WAIT},
        )
        return bool(row and row["dropped"])
