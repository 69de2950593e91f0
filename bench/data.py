"""Large stores for the growth scenario, written straight into SQLite.

A million deliveries through the API would take minutes per run; these rows have the shapes
the API writes (the schema is the migrated one), and the hub under test reads them as its own.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

TENANT = "tn_default"
BATCH = 20_000


def _id(prefix: str, millis: int) -> str:
    return f"{prefix}_{millis.to_bytes(6, 'big').hex()}{os.urandom(10).hex()}"


def seed(db: Path, endpoint_ids: list[str], events: int, body: bytes, finished: bool) -> int:
    """`events` events with one delivery per endpoint: finished ones (succeeded, with an attempt
    each) make history; unfinished ones are pending and due now (a backlog). Returns how many
    deliveries were written."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    now = int(time.time() * 1000) - 86_400_000  # a day old, so backlog rows are due
    written = 0
    for start in range(0, events, BATCH):
        rows_e, rows_d, rows_a = [], [], []
        for _ in range(min(BATCH, events - start)):
            event_id = _id("evt", now)
            rows_e.append((event_id, TENANT, "t", "", "C1", "K1", body, now))
            for endpoint_id in endpoint_ids:
                delivery_id = _id("dlv", now)
                status = "succeeded" if finished else "pending"
                rows_d.append(
                    (
                        delivery_id,
                        TENANT,
                        event_id,
                        endpoint_id,
                        status,
                        "scheduled",
                        1 if finished else 0,
                        None if finished else now,
                        200 if finished else None,
                        now,
                        now,
                    )
                )
                if finished:
                    rows_a.append(
                        (_id("att", now), delivery_id, TENANT, 1, "scheduled", now, 3, 200, "ok")
                    )
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO events (id, tenant_id, type, request_hash, customer_number, "
            "external_contract_id, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows_e,
        )
        conn.executemany(
            "INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, trigger, "
            "attempts, next_attempt_at, last_status_code, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows_d,
        )
        conn.executemany(
            "INSERT INTO attempts (id, delivery_id, tenant_id, attempt, trigger, started_at, "
            "duration_ms, status_code, response_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows_a,
        )
        conn.execute("COMMIT")
        written += len(rows_d)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return written
