"""Bulk ingest against its limit (issue 21): the bare-store floor and the cost per endpoint.

`store_floor` writes the rows `accept_batch` commits — each event and one delivery per matching
endpoint, 100 events per transaction, the hub's own durability settings (SQLite WAL with
`synchronous=FULL` and foreign keys; PostgreSQL `synchronous_commit=on`, COPY, as many writers
as the hub's group commit) — with no hub code at all: rows copied from a batch the hub stored,
new ids, prepared before the clock starts, and written from the CPU the hub gets (the database
server runs where it runs for both). `accept_batch ÷ store_floor` is the share of the
store's own speed the hub keeps; the durability rule (an event and its deliveries in one
transaction) holds for both.

`accept_batch_endpoints` and the floor run with 1, 3, 10 and 30 matching endpoints per event:
what each added endpoint costs per event, in the hub and in the bare store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from app.store.postgres import PostgresConnector
from app.store.sqlite import _PRAGMAS
from bench.data import _id
from bench.procs import UNDER_TEST, Hub
from bench.scenarios import BATCH, Env, _endpoints, accept_batch_with, event_template

ENDPOINTS = (1, 3, 10, 30)
Rows = list[tuple[list[Any], list[list[Any]]]]  # per event: its row, its deliveries' rows


def store_floor(env: Env) -> dict[str, Any]:
    """Events per second the bare store commits, 100 per transaction, for each endpoint count
    (`events_per_s` = 3 endpoints, as accept_batch)."""
    figures = {f"events_per_s_{n}": _floor(env, n) for n in ENDPOINTS}
    return {"events_per_s": figures["events_per_s_3"], **figures, **_slope(figures)}


def accept_batch_endpoints(env: Env) -> dict[str, Any]:
    """accept_batch with 1, 3, 10 and 30 matching endpoints per event."""
    figures = {f"events_per_s_{n}": accept_batch_with(env, n)["events_per_s"] for n in ENDPOINTS}
    return {**figures, **_slope(figures)}


def _slope(figures: dict[str, float]) -> dict[str, float]:
    """µs per event at 1 and 30 endpoints, and µs per added endpoint between them."""
    one, thirty = (1e6 / max(figures[f"events_per_s_{n}"], 1e-9) for n in (1, 30))
    return {"us_per_event_1": one, "us_per_event_30": thirty,
            "us_per_added_endpoint": (thirty - one) / 29}  # fmt: skip


def _floor(env: Env, endpoints: int) -> float:
    db = env.db(f"floor{endpoints}")
    hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off"}).start()
    try:
        _endpoints(hub, [f"{env.receiver.url}/ok/{n}" for n in range(endpoints)])
        items = [event_template().replace('"%s"', f'"seed-{n}"') for n in range(BATCH)]
        with hub.client() as client:
            client.post("/v1/events/batch", content='{"items": [' + ",".join(items) + "]}")
    finally:
        hub.stop()
    events = int(env.size(20_000, 3_000))
    with _on(UNDER_TEST):
        if db.startswith("sqlite:///"):
            return _sqlite(db.removeprefix("sqlite:///"), events)
        return asyncio.run(_postgres(db, events))


@contextlib.contextmanager
def _on(cpus: set[int] | None) -> Iterator[None]:
    """This process on the hub's CPUs for a while, as the hub is for its whole life."""
    before = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _copies(event: dict[str, Any], deliveries: list[dict[str, Any]], events: int) -> Rows:
    """`events` copies of one stored event and its deliveries, each with ids of its own."""
    now = int(time.time() * 1000)
    rows: Rows = []
    for n in range(events):
        event_id = _id("evt", now)
        copy = {**event, "id": event_id, "idempotency_key": f"floor-{n}", "created_at": now}
        copied = [{**d, "id": _id("dlv", now), "event_id": event_id, "created_at": now,
                   "updated_at": now, "next_attempt_at": now} for d in deliveries]  # fmt: skip
        rows.append((list(copy.values()), [list(d.values()) for d in copied]))
    return rows


def _sqlite(path: str, events: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    event = dict(conn.execute("SELECT * FROM events LIMIT 1").fetchone())
    deliveries = [dict(r) for r in conn.execute(
        "SELECT * FROM deliveries WHERE event_id = ?", (event["id"],))]  # fmt: skip
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    rows = _copies(event, deliveries, events)
    insert_e = _insert("events", list(event), "?")
    insert_d = _insert("deliveries", list(deliveries[0]), "?")
    started = time.perf_counter()
    for start in range(0, events, BATCH):
        chunk = rows[start : start + BATCH]
        conn.execute("BEGIN")
        conn.executemany(insert_e, [e for e, _ in chunk])
        conn.executemany(insert_d, [d for _, ds in chunk for d in ds])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return events / elapsed


def _insert(table: str, columns: list[str], mark: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)})"


async def _postgres(url: str, events: int) -> float:
    import asyncpg

    conns = [await asyncpg.connect(url) for _ in range(PostgresConnector.writers)]
    try:
        event = dict(await conns[0].fetchrow("SELECT * FROM events LIMIT 1"))
        deliveries = [dict(r) for r in await conns[0].fetch(
            "SELECT * FROM deliveries WHERE event_id = $1", event["id"])]  # fmt: skip
        schema = await conns[0].fetchval("SELECT current_schema()")
        rows = _copies(event, deliveries, events)
        chunks = [rows[s : s + BATCH] for s in range(0, events, BATCH)]
        started = time.perf_counter()
        await asyncio.gather(*(_write(c, chunks[n :: len(conns)], list(event),
                                      list(deliveries[0]), schema)
                               for n, c in enumerate(conns)))  # fmt: skip
        return events / (time.perf_counter() - started)
    finally:
        for conn in conns:
            await conn.close()


async def _write(conn: Any, chunks: list[Rows], events: list[str], deliveries: list[str],
                 schema: str) -> None:  # fmt: skip
    for chunk in chunks:
        async with conn.transaction():
            await conn.copy_records_to_table("events", records=[tuple(e) for e, _ in chunk],
                                             columns=events, schema_name=schema)  # fmt: skip
            await conn.copy_records_to_table(
                "deliveries", records=[tuple(d) for _, ds in chunk for d in ds],
                columns=deliveries, schema_name=schema,
            )  # fmt: skip
