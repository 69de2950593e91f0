"""Weeks of webhook traffic on PostgreSQL (migration 0015): each table of traffic is
partitioned by id, and an id begins with its millisecond, so a partition is a span of time.
The hub makes this week's and the next weeks' partitions ahead of time; retention drops a
partition whole once all of it is past the retention period — no row-by-row delete, no dead
rows for VACUUM, the space back at once. Nothing depends on a week being made: ids no partition
covers land in the DEFAULT partition, which batched deletes purge like SQLite's tables."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from app.clock import Clock
from app.ids import id_floor, id_time_ms
from app.store import Store
from app.store.retention import Partition

log = logging.getLogger("billhook.retention")

WEEK_MS = 7 * 86_400_000
_MONDAY_MS = 4 * 86_400_000  # 1970-01-01 was a Thursday: weeks start on Mondays, 00:00 UTC
AHEAD_WEEKS = 2
TABLES = (("attempts", "att"), ("deliveries", "dlv"))  # drop order: nothing references attempts
_FAR = 1 << 48  # past any millisecond an id can hold


def week_start(ms: int) -> int:
    return (ms - _MONDAY_MS) // WEEK_MS * WEEK_MS + _MONDAY_MS


def _ms(bound: str | None, unbounded: int) -> int:
    return unbounded if bound is None else id_time_ms(bound)


def gaps(lo: int, hi: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of [lo, hi) that no span of `taken` covers, in order."""
    free, cursor = [], lo
    for start, end in sorted(taken):
        if end <= cursor or start >= hi:
            continue
        if start > cursor:
            free.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < hi:
        free.append((cursor, hi))
    return free


def _name(table: str, lo_ms: int) -> str:
    return f"{table}_{datetime.fromtimestamp(lo_ms / 1000, UTC):%Y%m%d_%H%M%S}"


class Partitions:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def make_ahead(self, since_ms: int | None = None) -> int:
        """Partitions for every week from the one holding `since_ms` (default: now) through
        AHEAD_WEEKS after this one, wherever none is yet; how many were made. A week the
        default partition already holds rows of is left to it. SQLite has no partitions."""
        if not self._store.retention.partitioned:
            return 0
        now = self._clock.now_ms()
        first = week_start(now if since_ms is None else since_ms)
        last = week_start(now) + (AHEAD_WEEKS + 1) * WEEK_MS
        made = 0
        for table, prefix in TABLES:
            existing = await self._store.retention.partitions(table)
            taken = [(_ms(p.lo, -1), _ms(p.hi, _FAR)) for p in existing if not p.default]
            for lo, hi in gaps(first, last, taken):
                while lo < hi:  # one partition per week, never longer
                    end = min(hi, week_start(lo) + WEEK_MS)
                    made += await self._store.retention.make_partition(
                        table, _name(table, lo), id_floor(prefix, lo), id_floor(prefix, end)
                    )
                    lo = end
        return made

    async def drop_expired(self, cutoff_ms: int) -> int:
        """Drops every partition wholly older than `cutoff_ms`, attempts first; the rows they
        held (PostgreSQL's estimate). One that cannot go yet stays for batched deletes. While
        an expired week of attempts is still there (its lock was busy), no week of deliveries
        goes: removing its late attempts would then delete that whole week row by row."""
        removed = 0
        for table, prefix in TABLES:
            before = id_floor(prefix, cutoff_ms)
            expired = [p for p in await self._store.retention.partitions(table)
                       if _expired(p, before)]  # fmt: skip
            for partition in expired:
                if await self._drop(partition):
                    removed += partition.estimated_rows
                elif table == "attempts":
                    return removed
        return removed

    async def _drop(self, partition: Partition) -> bool:
        dropped = await self._store.retention.drop_partition(partition)
        if dropped:
            log.info("partition %s dropped (~%d rows)", partition.name, partition.estimated_rows)
        else:
            log.debug("partition %s kept: a delivery is open, or its lock was busy", partition.name)
        return dropped


def _expired(partition: Partition, before: str) -> bool:
    return not partition.default and partition.hi is not None and partition.hi <= before
