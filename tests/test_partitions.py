"""Retention by partitions on PostgreSQL (migration 0015, app/partitions.py): a filled database is
partitioned in place, weeks are made ahead, and retention drops whole weeks — never one that
still holds open work, never by queueing live writers behind its lock — leaving no attempt
without its delivery. SQLite keeps batched deletes (tests/test_retention.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from app.partitions import WEEK_MS, gaps, week_start
from app.retention import RetentionService
from app.store import queries
from app.testing import FrozenClock, Receiver
from tests.backends import rows
from tests.conftest import START_MS, HubClient, postgres_schema
from tests.test_e2e import Recorder

DAY = 86_400  # FrozenClock.advance takes seconds
DAY_MS = DAY * 1000


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """This module's hubs run on PostgreSQL only: partitions are PostgreSQL's."""
    async with postgres_schema() as url:
        yield url


async def _partitions(url: str, table: str) -> list[str]:
    found = await rows(
        url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        f"WHERE i.inhparent = '{table}'::regclass",
    )
    return sorted(name for (name,) in found)


async def _home(url: str, table: str, row_id: str) -> str:
    """The partition that holds a row."""
    [(name,)] = await rows(
        url, f"SELECT tableoid::regclass::text FROM {table} WHERE id = '{row_id}'"
    )
    return str(name)


async def _delivered(hub: HubClient, event_id: str) -> dict[str, Any]:
    [delivery] = (await hub.http.get(f"/v1/events/{event_id}")).json()["deliveries"]
    attempts = (await hub.http.get(f"/v1/deliveries/{delivery['id']}/attempts")).json()["data"]
    return {"delivery": delivery, "attempts": attempts}


def test_weeks_are_cut_around_what_exists():
    monday = week_start(START_MS)
    assert monday <= START_MS < monday + WEEK_MS and monday % DAY_MS == 0
    assert gaps(0, 100, [(-1, 30), (50, 60)]) == [(30, 50), (60, 100)]
    assert gaps(0, 100, [(-1, 1 << 48)]) == []


async def test_a_filled_database_is_partitioned_in_place_and_old_weeks_dropped(
    hub_factory, database_url: str, monkeypatch: pytest.MonkeyPatch
):
    """Rows written before migration 0015 stay readable in the history partition; new weeks are
    made ahead; past the retention period the history and old weeks are dropped whole."""
    clock = FrozenClock(START_MS)
    every = queries.migrations
    monkeypatch.setattr(queries, "migrations", lambda d: [m for m in every(d) if m[0] < 15])
    before: HubClient = await hub_factory(clock=clock, retention_days=30)
    recorder = Recorder()
    server = await Receiver(recorder.app, "/hook").__aenter__()
    recorder.secret = (await before.endpoint(server.url))["secret"]
    old = [(await before.publish("t", {"n": n}))["id"] for n in range(3)]
    await before.drain()
    monkeypatch.setattr(queries, "migrations", every)
    try:
        await _migrated_then_purged(hub_factory, database_url, clock, old)
    finally:
        await server.__aexit__(None, None, None)
    assert len(recorder.requests) == 4  # every event delivered once, before and after


async def _migrated_then_purged(
    hub_factory: Any, database_url: str, clock: FrozenClock, old: list[str]
) -> None:
    hub: HubClient = await hub_factory(clock=clock, retention_days=30)  # migrates a filled store
    assert await _partitions(database_url, "deliveries") == [
        "deliveries_default", "deliveries_history"]  # fmt: skip
    assert (await _delivered(hub, old[0]))["attempts"]  # still readable, attempts too
    retention = RetentionService(hub.hub.store, clock, 30)
    assert await retention.partitions.make_ahead() == 2 * 3  # two tables, this week + 2 more
    assert await retention.partitions.make_ahead() == 0
    clock.advance(DAY)
    recent = (await hub.publish("t", {"n": "recent"}))["id"]
    await hub.drain()
    delivery = (await _delivered(hub, recent))["delivery"]["id"]
    assert await _home(database_url, "deliveries", delivery) == "deliveries_20261118_110640"

    clock.advance(38 * DAY)  # the history and the first, short week are past 30 days
    assert await retention.purge() > 0
    kept = await _partitions(database_url, "deliveries")
    assert "deliveries_history" not in kept and "deliveries_20261118_110640" not in kept
    assert "attempts_history" not in await _partitions(database_url, "attempts")
    assert [(await hub.http.get(f"/v1/events/{e}")).status_code for e in old] == [404] * 3


async def test_a_week_with_open_work_stays_and_late_attempts_go_with_their_week(
    hub_factory, database_url: str
):
    """A delivery still retrying keeps its week of deliveries; once it has failed, the week is
    dropped, and its attempt made in a later week of attempts goes with it."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retry_schedule="10d", retention_days=30)
    retention = RetentionService(hub.hub.store, clock, 30)
    await retention.partitions.make_ahead()
    recorder = Recorder([500, 500])
    async with Receiver(recorder.app, "/hook") as server:
        recorder.secret = (await hub.endpoint(server.url))["secret"]
        await _retried_past_retention(hub, retention, database_url, clock)


async def _retried_past_retention(
    hub: HubClient, retention: RetentionService, database_url: str, clock: FrozenClock
) -> None:
    event = (await hub.publish("t", {"n": 1}))["id"]
    await hub.drain()  # first attempt fails; the retry is due in 10 days
    delivery = (await _delivered(hub, event))["delivery"]["id"]
    week = await _home(database_url, "deliveries", delivery)

    clock.advance(36 * DAY)  # its week is past retention, the delivery still pending
    await retention.partitions.make_ahead()
    await retention.purge()
    assert week in await _partitions(database_url, "deliveries")
    assert (await _delivered(hub, event))["delivery"]["status"] == "pending"

    await hub.drain()  # the retry, made now, in a later week of attempts, fails for good
    assert (await _delivered(hub, event))["delivery"]["status"] == "failed"
    await retention.purge()
    assert week not in await _partitions(database_url, "deliveries")
    late = await rows(database_url, f"SELECT id FROM attempts WHERE delivery_id = '{delivery}'")
    assert late == []


async def test_making_and_dropping_give_up_rather_than_queue_live_writers(
    hub_factory, database_url: str
):
    """While another transaction uses the table, making or dropping one of its partitions waits
    only LOCK_WAIT and leaves the work for the next run (the same week of deliveries with it);
    it is done once the table is free."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retention_days=30)
    retention = RetentionService(hub.hub.store, clock, 30)
    await retention.partitions.make_ahead()
    recorder = Recorder()
    async with Receiver(recorder.app, "/hook") as server:
        recorder.secret = (await hub.endpoint(server.url))["secret"]
        await hub.publish("t", {"n": 1})
        await hub.drain()  # delivered: nothing open keeps the week
    clock.advance(40 * DAY)
    cutoff = clock.now_ms() - 30 * DAY_MS
    reader = await asyncpg.connect(database_url)
    try:
        async with reader.transaction():
            await reader.fetch("SELECT count(*) FROM attempts")
            await retention.partitions.drop_expired(cutoff)  # returns, the lock still held
            assert await retention.partitions.make_ahead() == 3  # the deliveries' weeks only
        assert "attempts_20261116_000000" in await _partitions(database_url, "attempts")
        # … and its week of deliveries waits for it (its late attempts are deleted first).
        assert "deliveries_20261116_000000" in await _partitions(database_url, "deliveries")
    finally:
        await reader.close()
    await retention.partitions.drop_expired(cutoff)
    assert "attempts_20261116_000000" not in await _partitions(database_url, "attempts")
    assert await retention.partitions.make_ahead() == 3  # the attempts' weeks


async def test_rows_the_default_partition_took_are_left_there_and_purged_in_batches(
    hub_factory, database_url: str
):
    """An id no week covered went to the DEFAULT partition; making that week later leaves it
    (the rows would not fit) without an error, and retention still removes the rows."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retention_days=30)
    recorder = Recorder()
    async with Receiver(recorder.app, "/hook") as server:
        recorder.secret = (await hub.endpoint(server.url))["secret"]
        event = (await hub.publish("t", {"n": 1}))["id"]
        await hub.drain()
    delivery = (await _delivered(hub, event))["delivery"]["id"]
    assert await _home(database_url, "deliveries", delivery) == "deliveries_default"
    retention = RetentionService(hub.hub.store, clock, 30)
    assert await retention.partitions.make_ahead() == 2 * 2  # all but the week held by default
    clock.advance(40 * DAY)
    assert await retention.purge() == 3  # event, delivery, attempt
    assert (await hub.http.get(f"/v1/events/{event}")).status_code == 404
