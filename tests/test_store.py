"""The store on its own: migrations, durability across reopen, group commit, the claim index."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from app.ids import new_id
from app.records import Endpoint, Event, NewDelivery, NewEvent
from app.store import IntegrityError, Store, open_store, queries
from app.store.sqlite import split_script
from tests.conftest import START_MS


@pytest.fixture
async def store(tmp_path: Path):
    opened = await open_store(f"sqlite:///{tmp_path}/s.db", migrate_now_ms=START_MS)
    await opened.tenants.ensure("tn_default", "default", None, START_MS)
    yield opened
    await opened.close()


def _event(key: str | None = None, tenant: str = "tn_default") -> Event:
    return Event(
        id=new_id("evt"),
        tenant_id=tenant,
        type="t",
        body=b'{"parameters":{},"type":"t"}',
        created_at=START_MS,
        idempotency_key=key,
    )


async def _endpoint(store: Store) -> Endpoint:
    endpoint = Endpoint(
        id=new_id("ep"),
        tenant_id="tn_default",
        url="http://127.0.0.1:9/",
        secret="whsec_AAAA",
        created_at=START_MS,
        updated_at=START_MS,
    )
    await store.endpoints.create(endpoint)
    return endpoint


async def test_migrations_are_versioned_and_applied_once(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/m.db"
    first = await open_store(url)
    assert await first.migrate(START_MS) == [v for v, _, _ in queries.migrations("sqlite")]
    assert await first.migrate(START_MS) == []
    await first.close()
    with sqlite3.connect(tmp_path / "m.db") as raw:
        versions = [r[0] for r in raw.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [v for v, _, _ in queries.migrations("sqlite")]


async def test_a_failing_migration_leaves_nothing_half_applied(tmp_path: Path):
    """Each run is one transaction: a broken script rolls back the statements before it."""
    store = await open_store(f"sqlite:///{tmp_path}/m.db")
    broken = [(1, "broken", "CREATE TABLE a (x INTEGER);\nCREATE TABLE a (x INTEGER);\n")]
    with pytest.raises(sqlite3.OperationalError):
        await store.db.migrate(broken, START_MS)
    await store.close()
    with sqlite3.connect(tmp_path / "m.db") as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "a" not in tables


def test_split_script_keeps_statements_whole():
    script = (
        "-- a comment; with a semicolon\nCREATE TABLE t (x TEXT DEFAULT ';');\n"
        "INSERT INTO t VALUES ('a;b');\n-- trailing\n"
    )
    assert split_script(script) == [
        "-- a comment; with a semicolon\nCREATE TABLE t (x TEXT DEFAULT ';');",
        "INSERT INTO t VALUES ('a;b');",
    ]


async def test_committed_events_survive_a_reopen(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/r.db"
    store = await open_store(url, migrate_now_ms=START_MS)
    await store.tenants.ensure("tn_default", "default", None, START_MS)
    endpoint = await _endpoint(store)
    event = _event()
    await store.events.insert(NewEvent(event, (NewDelivery(new_id("dlv"), endpoint.id, START_MS),)))
    await store.close()
    reopened = await open_store(url, migrate_now_ms=START_MS)
    assert (await reopened.events.get("tn_default", event.id)) == event
    assert len(await reopened.deliveries.of_event("tn_default", event.id)) == 1
    await reopened.close()


async def test_group_commit_isolates_a_bad_item(store: Store):
    """One item that violates a constraint fails alone; its batch neighbours commit."""
    endpoint = await _endpoint(store)
    good = [
        NewEvent(_event(), (NewDelivery(new_id("dlv"), endpoint.id, START_MS),)) for _ in range(5)
    ]
    bad = NewEvent(_event(), (NewDelivery(new_id("dlv"), "ep_does_not_exist", START_MS),))
    results = await asyncio.gather(
        *(store.events.insert(n) for n in [*good[:2], bad, *good[2:]]), return_exceptions=True
    )
    assert isinstance(results[2], IntegrityError)
    for new in good:
        assert await store.events.get("tn_default", new.event.id) == new.event
    assert await store.events.get("tn_default", bad.event.id) is None


async def test_idempotency_keys_are_unique_per_tenant_within_one_batch(store: Store):
    first, second = _event("k"), _event("k")
    a, b = await asyncio.gather(
        store.events.insert(NewEvent(first, ())), store.events.insert(NewEvent(second, ()))
    )
    assert (a.created, b.created) == (True, False)
    assert b.event.id == first.id


async def test_claim_uses_the_due_index(store: Store):
    """The claim reads the partial index on next_attempt_at, so history does not slow it."""
    sql = store.db._sql["deliveries_claim"].sql  # type: ignore[attr-defined]
    params = {
        "now": START_MS,
        "lease_until": START_MS + 1,
        "limit": 10,
        "scan": 40,
        "cap": 8,
        "excluded": "[]",
        "free": "{}",
    }
    rows = await store.db.writer.execute_fetchall("EXPLAIN QUERY PLAN " + sql, params)  # type: ignore[attr-defined]
    plan = " ".join(str(tuple(r)) for r in rows)
    assert "deliveries_due" in plan


async def test_claim_takes_due_deliveries_oldest_first_and_leases_them(store: Store):
    endpoint = await _endpoint(store)
    deliveries = []
    for offset in (30, 10, 20, 99_000):
        event = _event()
        delivery = NewDelivery(new_id("dlv"), endpoint.id, START_MS + offset)
        await store.events.insert(NewEvent(event, (delivery,)))
        deliveries.append(delivery)
    now = START_MS + 1000
    jobs = await store.deliveries.claim(now, now + 5000, limit=2)
    assert {j.delivery_id for j in jobs} == {deliveries[1].id, deliveries[2].id}
    assert all(j.lease_until == now + 5000 for j in jobs)
    rest = await store.deliveries.claim(now, now + 5000, limit=10)
    assert [j.delivery_id for j in rest] == [deliveries[0].id]
    assert await store.deliveries.claim(now, now + 5000, limit=10) == []
