"""Large stores for the growth, replay and retention scenarios, written straight into the
database (SQLite or PostgreSQL).

A million deliveries through the API would take minutes per run; these rows have the shapes
the API writes (the schema is the migrated one), and the hub under test reads them as its own.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

TENANT = "tn_default"
BATCH = 20_000
EVENT_COLUMNS = ("id", "tenant_id", "type", "request_hash", "customer_number",
                 "external_contract_id", "body", "created_at")  # fmt: skip
DELIVERY_COLUMNS = ("id", "tenant_id", "event_id", "endpoint_id", "status", "trigger",
                    "attempts", "next_attempt_at", "last_status_code", "created_at",
                    "updated_at")  # fmt: skip
ATTEMPT_COLUMNS = ("id", "delivery_id", "tenant_id", "endpoint_id", "attempt", "trigger",
                   "started_at", "duration_ms", "status_code", "response_body")  # fmt: skip
Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _id(prefix: str, millis: int) -> str:
    return f"{prefix}_{millis.to_bytes(6, 'big').hex()}{os.urandom(10).hex()}"


def _batches(
    endpoint_ids: list[str], events: int, body: bytes, finished: bool, age_ms: int,
    spread_ms: int = 0,
) -> Iterator[Rows]:  # fmt: skip
    """Events with one delivery per endpoint: finished ones (succeeded, with an attempt each)
    make history; unfinished ones are pending and due now (a backlog). `spread_ms`: the events
    are evenly spread over that much time before `age_ms` ago (else all at one moment)."""
    end = int(time.time() * 1000) - age_ms
    for start in range(0, events, BATCH):
        rows_e: list[tuple[Any, ...]] = []
        rows_d: list[tuple[Any, ...]] = []
        rows_a: list[tuple[Any, ...]] = []
        for n in range(start, min(start + BATCH, events)):
            now = end - spread_ms + spread_ms * n // max(events, 1)
            event_id = _id("evt", now)
            rows_e.append((event_id, TENANT, "t", "", "C1", "K1", body, now))
            for endpoint_id in endpoint_ids:
                delivery_id = _id("dlv", now)
                rows_d.append((delivery_id, TENANT, event_id, endpoint_id,
                               "succeeded" if finished else "pending", "scheduled",
                               1 if finished else 0, None if finished else now,
                               200 if finished else None, now, now))  # fmt: skip
                if finished:
                    rows_a.append((_id("att", now), delivery_id, TENANT, endpoint_id, 1,
                                   "scheduled", now, 3, 200, "ok"))  # fmt: skip
        yield rows_e, rows_d, rows_a


def seed(
    db: str,
    endpoint_ids: list[str],
    events: int,
    body: bytes,
    finished: bool,
    age_ms: int = 86_400_000,  # a day old by default, so backlog rows are due
    copy: bool = True,
    spread_ms: int = 0,
) -> int:
    """Write them into the database at `db` (a URL); how many deliveries were written.
    PostgreSQL: COPY, or (`copy=False`) INSERTs as the hub writes them, which fill the free
    space VACUUM left where COPY's bulk writes may extend the table instead."""
    batches = _batches(endpoint_ids, events, body, finished, age_ms, spread_ms)
    if db.startswith("sqlite:///"):
        return _seed_sqlite(db.removeprefix("sqlite:///"), batches)
    return asyncio.run(_seed_postgres(db, batches, copy))


def _seed_sqlite(path: str, batches: Iterator[Rows]) -> int:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    written = 0
    for rows_e, rows_d, rows_a in batches:
        conn.execute("BEGIN")
        for table, columns, rows in (("events", EVENT_COLUMNS, rows_e),
                                     ("deliveries", DELIVERY_COLUMNS, rows_d),
                                     ("attempts", ATTEMPT_COLUMNS, rows_a)):  # fmt: skip
            marks = ", ".join("?" for _ in columns)
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            conn.executemany(sql, rows)
        conn.execute("COMMIT")
        written += len(rows_d)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return written


async def _seed_postgres(url: str, batches: Iterator[Rows], copy: bool) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    written = 0
    try:
        [schema] = [r[0] for r in await conn.fetch("SELECT current_schema()")]
        for rows_e, rows_d, rows_a in batches:
            async with conn.transaction():
                for table, columns, rows in (("events", EVENT_COLUMNS, rows_e),
                                             ("deliveries", DELIVERY_COLUMNS, rows_d),
                                             ("attempts", ATTEMPT_COLUMNS, rows_a)):  # fmt: skip
                    if rows and copy:
                        await conn.copy_records_to_table(
                            table, records=rows, columns=columns, schema_name=schema
                        )
                    elif rows:
                        marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
                        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                        await conn.executemany(sql, rows)
            written += len(rows_d)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return written


def weeks(db: str, since_ms: int) -> int:
    """PostgreSQL: the weekly partitions a hub running since `since_ms` would have made by now
    (app/partitions.py), so that rows seeded as that old land in weeks retention can drop, as
    they would have in production; how many were made. SQLite has none."""
    if db.startswith("sqlite:///"):
        return 0

    async def run() -> int:
        from app.clock import SystemClock
        from app.partitions import Partitions
        from app.store import open_store

        store = await open_store(db)
        try:
            return await Partitions(store, SystemClock()).make_ahead(since_ms)
        finally:
            await store.close()

    return asyncio.run(run())


def settle(db: str) -> None:
    """PostgreSQL: VACUUM ANALYZE, as autovacuum does after many inserts (it marks pages
    all-visible, which index-only scans need). SQLite: ANALYZE is not run by the hub, so
    neither here."""
    if db.startswith("sqlite:///"):
        return

    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(db)
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()

    asyncio.run(run())
