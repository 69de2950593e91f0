"""The store on its own: migrations, durability across reopen, group commit, the claim index."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import asyncpg
import pytest

from app.delivery import Outcome
from app.health import judge
from app.ids import new_id
from app.records import Endpoint, Event, NewDelivery, NewEvent
from app.settle import settle
from app.store import IntegrityError, Store, open_store, queries
from app.store.connector import Tx
from app.store.deliveries import Claim
from app.store.events import insert_events
from app.store.outcomes import Rules, arrays
from app.store.sqlite import split_script
from tests.backends import rows
from tests.conftest import SEALER, START_MS

RULES = Rules(judge, backoff_ms=(60_000,))


@pytest.fixture
async def store(database_url: str):
    opened = await open_store(database_url, sealer=SEALER, migrate_now_ms=START_MS)
    await opened.tenants.ensure("tn_default", "default", None, START_MS)
    yield opened
    await opened.close()


@pytest.fixture
async def second(store: Store, database_url: str):
    """Another Store on the same database: what a second hub process holds."""
    opened = await open_store(database_url, sealer=SEALER)
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


async def test_migrations_are_versioned_and_applied_once(database_url: str):
    """Several processes may start at once: the first migrates, the others find it done."""
    stores = [await open_store(database_url, sealer=SEALER) for _ in range(3)]
    dialect = stores[0].db.dialect
    applied = await asyncio.gather(*(s.migrate(START_MS) for s in stores))
    expected = [v for v, _, _ in queries.migrations(dialect)]
    assert sorted(applied, key=len) == [[], [], expected]
    for s in stores:
        await s.close()
    versions = await rows(database_url, "SELECT version FROM schema_migrations ORDER BY 1")
    assert [v for (v,) in versions] == expected


async def test_a_failing_migration_leaves_nothing_half_applied(database_url: str):
    """Each run is one transaction: a broken script rolls back the statements before it."""
    store = await open_store(database_url, sealer=SEALER)
    broken = [(1, "broken", "CREATE TABLE a (x INTEGER);\nCREATE TABLE a (x INTEGER);\n")]
    with pytest.raises(Exception, match="already exists"):
        await store.db.migrate(broken, START_MS)
    await store.close()
    with pytest.raises(Exception, match=r"no such table|does not exist"):
        await rows(database_url, "SELECT * FROM a")


def test_split_script_keeps_statements_whole():
    script = (
        "-- a comment; with a semicolon\nCREATE TABLE t (x TEXT DEFAULT ';');\n"
        "INSERT INTO t VALUES ('a;b');\n-- trailing\n"
    )
    assert split_script(script) == [
        "-- a comment; with a semicolon\nCREATE TABLE t (x TEXT DEFAULT ';');",
        "INSERT INTO t VALUES ('a;b');",
    ]


def test_named_parameters_become_numbered_and_plain_inserts_can_be_copied():
    """One rewrite per dialect keeps the parameters' order (a repeated name is one number);
    only an INSERT whose values are all parameters is loaded with COPY."""
    sql = "-- note\nINSERT INTO t (a, b, c) VALUES (:x, :y, :x);"
    lite, pg = queries._positional("q", sql, "?"), queries._positional("q", sql, "$")
    assert "VALUES (?1, ?2, ?1)" in lite.sql and "VALUES ($1, $2, $1)" in pg.sql
    assert lite.args({"y": 2, "x": 1, "unused": 3}) == (1, 2)
    assert pg.copy is not None and pg.copy.records([{"x": 1, "y": 2}]) == [(1, 2, 1)]
    for other in (
        "INSERT INTO t (a, b) VALUES (:x, 0)",
        "INSERT INTO t (a, b) VALUES (:x, lower(:y))",
        "INSERT INTO t (a, b) VALUES (:x, :y) ON CONFLICT DO NOTHING",
        "INSERT INTO t (a, b) VALUES (:x, :y) RETURNING a",
        "UPDATE t SET a = :x, b = :y",
    ):
        assert queries._positional("q", other, "$").copy is None, other


async def test_committed_events_survive_a_reopen(database_url: str):
    url = database_url
    store = await open_store(url, sealer=SEALER, migrate_now_ms=START_MS)
    await store.tenants.ensure("tn_default", "default", None, START_MS)
    endpoint = await _endpoint(store)
    event = _event()
    await store.events.insert(NewEvent(event, (NewDelivery(new_id("dlv"), endpoint.id, START_MS),)))
    await store.close()
    reopened = await open_store(url, sealer=SEALER, migrate_now_ms=START_MS)
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


BULK = 40  # more rows than COPY_ROWS: PostgreSQL loads them with COPY


async def test_a_bulk_batch_stores_every_column_as_given(store: Store):
    """Bulk rows (COPY on PostgreSQL) keep bytes, NULLs, keys and held deliveries exactly."""
    endpoint = await _endpoint(store)
    batch = [
        NewEvent(
            replace(_event(f"bulk-{n}"), customer_number=f"C-{n}" if n % 2 else None),
            (NewDelivery(new_id("dlv"), endpoint.id, None if n % 3 else START_MS + n),),
        )
        for n in range(BULK)
    ]
    inserted = await store.events.insert_many(batch)
    assert all(i.created for i in inserted)
    for new in batch:
        assert await store.events.get("tn_default", new.event.id) == new.event
        [stored] = await store.deliveries.of_event("tn_default", new.event.id)
        assert stored.next_attempt_at == new.deliveries[0].next_attempt_at
        assert (stored.status, stored.attempts) == ("pending", 0)


async def test_a_refused_row_in_a_bulk_insert_fails_the_whole_write(
    store: Store, database_url: str
):
    """A row the database refuses (an unknown endpoint) is an IntegrityError on both backends,
    COPY included, and nothing of its transaction is stored."""
    endpoint = await _endpoint(store)
    news = [
        NewEvent(_event(), (NewDelivery(new_id("dlv"), endpoint.id, START_MS),))
        for _ in range(BULK - 1)
    ]
    news.append(NewEvent(_event(), (NewDelivery(new_id("dlv"), "ep_does_not_exist", START_MS),)))

    async def write(tx: Tx) -> None:
        await insert_events(tx, news, {})

    with pytest.raises(IntegrityError):
        await store.db.transact(write)
    assert await rows(database_url, "SELECT count(*) FROM events") == [(0,)]


async def test_idempotency_keys_are_unique_per_tenant_within_one_batch(store: Store):
    first, second = _event("k"), _event("k")
    a, b = await asyncio.gather(
        store.events.insert(NewEvent(first, ())), store.events.insert(NewEvent(second, ()))
    )
    assert (a.created, b.created) == (True, False)
    assert b.event.id == first.id


async def test_claim_uses_the_due_index(store: Store, database_url: str):
    """The claim reads the partial index on next_attempt_at, so history does not slow it.
    (On PostgreSQL with sequential scans priced out: an empty schema has no statistics for
    the planner to choose by, so the test asks whether the index serves the claim at all.)"""
    query = store.db._sql["deliveries_claim"]  # type: ignore[attr-defined]
    params = {"now": START_MS, "lease_until": START_MS + 1, "limit": 10, "scan": 40, "cap": 8,
              "excluded": store.db.ids([]), "free": "{}"} | arrays(None)  # fmt: skip
    names = {"deliveries_due"}
    if store.db.dialect == "sqlite":
        found = await store.db.writer.execute_fetchall(  # type: ignore[attr-defined]
            "EXPLAIN QUERY PLAN " + query.sql, query.args(params)
        )
    else:
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("SET enable_seqscan = off")
            found = await conn.fetch("EXPLAIN " + query.sql, *query.args(params))
            # Deliveries are partitioned by time (migration 0015): each partition has its copy.
            names = {str(r[0]) for r in await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'deliveries_due'::regclass")}  # fmt: skip
        finally:
            await conn.close()
    plan = " ".join(str(tuple(r)) for r in found)
    assert names and any(name in plan for name in names)


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


async def test_two_processes_claim_disjoint_deliveries(store: Store, second: Store):
    """Workers in different processes never claim the same due delivery (PostgreSQL: FOR
    UPDATE SKIP LOCKED; SQLite: one writer at a time)."""
    endpoint = await _endpoint(store)
    for _ in range(300):
        await store.events.insert(
            NewEvent(_event(), (NewDelivery(new_id("dlv"), endpoint.id, START_MS),))
        )
    claimed: list[str] = []
    while True:  # rounds of six concurrent claims; a claim may skip rows another one has locked
        claims = [s.deliveries.claim(START_MS, START_MS + 60_000, 100) for s in (store, second) * 3]
        found = [j.delivery_id for jobs in await asyncio.gather(*claims) for j in jobs]
        if not found:
            break
        claimed += found
    assert len(claimed) == 300 and len(set(claimed)) == 300  # each one claimed, and once


async def test_one_idempotency_key_from_two_processes_is_one_event(store: Store, second: Store):
    """Both see no event with the key and both insert: the unique index refuses one, whose
    retry then reads the other's and answers it as the original."""
    for n in range(10):
        a, b = await asyncio.gather(
            store.events.insert(NewEvent(_event(f"k{n}"), ())),
            second.events.insert(NewEvent(_event(f"k{n}"), ())),
        )
        assert sorted((a.created, b.created)) == [False, True]
        assert a.event.id == b.event.id


async def test_one_ordering_key_from_two_processes_has_one_head(store: Store, second: Store):
    """The check-then-insert of ordered deliveries cannot release two heads of one key."""
    endpoint = await _endpoint(store)

    def ordered(key: str) -> NewEvent:
        event = _event()
        delivery = NewDelivery(new_id("dlv"), endpoint.id, START_MS, ordering_key=key)
        return NewEvent(event, (delivery,))

    for n in range(10):
        await asyncio.gather(*(s.events.insert(ordered(f"K{n}")) for s in (store, second) * 2))
    heads = (
        await rows(
            store.db.url if hasattr(store.db, "url") else "",  # type: ignore[attr-defined]
            "SELECT ordering_key, count(*) FROM deliveries WHERE queued = 0 GROUP BY ordering_key",
        )
        if store.db.dialect == "postgres"
        else None
    )
    if heads is not None:
        assert sorted(heads) == [(f"K{n}", 1) for n in range(10)]
    jobs = await store.deliveries.claim(START_MS, START_MS + 60_000, 100)
    assert sorted(j.ordering_key or "" for j in jobs) == [f"K{n}" for n in range(10)]


async def test_a_pooled_postgres_connection_is_handed_back_without_a_reset_round_trip(
    postgres_database: str,
):
    """asyncpg's default release runs `RESET ALL; UNLISTEN *; …` — a round trip per
    transaction for session state the store never leaves (SET LOCAL, xact locks)."""
    store = await open_store(postgres_database, migrate_now_ms=START_MS, pool_size=1)
    sent: list[str] = []
    try:
        async with store.db.pool.acquire() as conn:  # type: ignore[attr-defined]
            conn.add_query_logger(lambda record: sent.append(record.query))
        await store.db.fetch("event_get", {"id": "evt_x", "tenant_id": "tn_default"})
        await store.db.transact(lambda tx: tx.fetch("event_get", {"id": "e", "tenant_id": "t"}))
    finally:
        await store.close()
    assert sent and not [q for q in sent if "RESET ALL" in q], sent


async def test_a_postgres_claim_returns_its_jobs_in_the_claiming_statement(
    postgres_database: str,
):
    """A worker turn's claim reads what it claimed (event body, endpoint) in the same UPDATE:
    one round trip less per turn than claiming ids and reading the jobs after."""
    store = await open_store(postgres_database, sealer=SEALER, migrate_now_ms=START_MS, pool_size=1)
    try:
        await store.tenants.ensure("tn_default", "default", None, START_MS)
        endpoint = await _endpoint(store)
        delivery = NewDelivery(new_id("dlv"), endpoint.id, START_MS)
        await store.events.insert(NewEvent(_event(), (delivery,)))
        sent: list[str] = []
        async with store.db.pool.acquire() as conn:  # type: ignore[attr-defined]
            conn.add_query_logger(lambda record: sent.append(record.query))
        jobs = await store.deliveries.claim(START_MS, START_MS + 5000, limit=10)
    finally:
        await store.close()
    assert [(j.delivery_id, j.url, j.body) for j in jobs] == [
        (delivery.id, endpoint.url, b'{"parameters":{},"type":"t"}')
    ]
    reads = [q for q in sent if "deliveries" in q]
    assert len(reads) == 1 and "UPDATE SKIP LOCKED" in reads[0], sent


async def test_a_postgres_worker_turn_is_four_round_trips(postgres_database: str):
    """A steady turn that records a finished attempt and claims the next delivery sends BEGIN
    (with its setting), the endpoint health read, one statement that writes the attempt,
    finishes its delivery and claims, and COMMIT — not one statement for each."""
    store = await open_store(postgres_database, sealer=SEALER, migrate_now_ms=START_MS, pool_size=1)
    try:
        await store.tenants.ensure("tn_default", "default", None, START_MS)
        endpoint = await _endpoint(store)
        for _ in range(3):
            delivery = NewDelivery(new_id("dlv"), endpoint.id, START_MS)
            await store.events.insert(NewEvent(_event(), (delivery,)))
        warm, job = await store.deliveries.claim(START_MS, START_MS + 5000, limit=2)
        ok = Outcome(START_MS, 3, status_code=200)
        # the endpoint's first success is stamped on its row; later ones within a second not
        await store.deliveries.record([settle(warm, ok, ())], START_MS, RULES)
        sent: list[str] = []
        async with store.db.pool.acquire() as conn:  # type: ignore[attr-defined]
            conn.add_query_logger(lambda record: sent.append(record.query))
        turn = await store.deliveries.turn(
            [settle(job, ok, ())], START_MS, START_MS + 5000, Claim(10), RULES
        )
        recorded = await store.deliveries.get("tn_default", job.delivery_id)
        attempts = await store.deliveries.attempts("tn_default", job.delivery_id, None, 10)
    finally:
        await store.close()
    assert len(turn.jobs) == 1 and turn.jobs[0].delivery_id not in (
        warm.delivery_id,
        job.delivery_id,
    )
    assert recorded is not None and recorded.status == "succeeded"
    assert [a.status_code for a in attempts] == [200]
    turn_sent = sent[: sent.index("COMMIT") + 1]
    assert len(turn_sent) == 4, [q[:70] for q in turn_sent]
    assert turn_sent[0].startswith("BEGIN; SET LOCAL") and "FROM endpoints" in turn_sent[1]
    assert "INSERT INTO attempts" in turn_sent[2] and "UPDATE SKIP LOCKED" in turn_sent[2]


async def test_a_turn_does_not_claim_again_what_it_finishes(store: Store):
    """A delivery whose lease ran out while its attempt was under way is due again; the turn
    that records the attempt moves it on and does not also claim it (on PostgreSQL both happen
    in one statement, which cannot update a row twice)."""
    endpoint = await _endpoint(store)
    await store.events.insert(
        NewEvent(_event(), (NewDelivery(new_id("dlv"), endpoint.id, START_MS),))
    )
    [job] = await store.deliveries.claim(START_MS, START_MS + 1000, limit=1)
    failed = settle(job, Outcome(START_MS + 1500, 3, status_code=500, error="http_5xx"), (60.0,))
    now = START_MS + 2000  # the lease ended at +1000: the delivery is due again
    turn = await store.deliveries.turn([failed], now, now + 5000, Claim(10), RULES)
    recorded = await store.deliveries.get("tn_default", job.delivery_id)
    assert turn.jobs == []
    assert recorded is not None
    assert (recorded.status, recorded.attempts) == ("pending", 1)
    assert recorded.next_attempt_at == failed.next_attempt_at


async def test_a_postgres_turn_does_not_wait_for_an_accept_to_its_endpoint(postgres_database: str):
    """A delivery written by an accept holds its foreign key's KEY SHARE lock on the endpoint
    row until the accept commits (after its fsync). The turn that judges the endpoint's results
    locks that row too: it must not wait for the accept (the deadline fails it if it does)."""
    store = await open_store(postgres_database, sealer=SEALER, migrate_now_ms=START_MS)
    accept = await asyncpg.connect(postgres_database)
    try:
        await store.tenants.ensure("tn_default", "default", None, START_MS)
        endpoint = await _endpoint(store)
        event = _event()
        await store.events.insert(
            NewEvent(event, (NewDelivery(new_id("dlv"), endpoint.id, START_MS),))
        )
        [job] = await store.deliveries.claim(START_MS, START_MS + 5000, limit=1)
        async with accept.transaction():  # an accept between its insert and its commit
            await accept.execute(
                "INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, trigger,"
                " next_attempt_at, created_at, updated_at)"
                " VALUES ($1, 'tn_default', $2, $3, 'pending', 'scheduled', $4, $4, $4)",
                new_id("dlv"), event.id, endpoint.id, START_MS,
            )  # fmt: skip
            done = settle(job, Outcome(START_MS, 3, status_code=200), ())
            turn = store.deliveries.turn([done], START_MS, START_MS + 5000, Claim(0), RULES)
            await asyncio.wait_for(turn, timeout=10)
        recorded = await store.deliveries.get("tn_default", job.delivery_id)
    finally:
        await accept.close()
        await store.close()
    assert recorded is not None and recorded.status == "succeeded"


async def test_a_postgres_accept_is_one_statement_in_a_transaction_of_its_own(
    postgres_database: str,
):
    """Events, their deliveries and the wake-up of idle workers go in one statement, one round
    trip, committed by itself: no BEGIN, no idempotency lookup first, no COMMIT (once the
    tables' column types are known, read at the first write). The rows are all stored, and a
    repeated key still answers the original event (the unique index refuses the statement,
    and the careful way reads the key)."""
    store = await open_store(postgres_database, sealer=SEALER, migrate_now_ms=START_MS, pool_size=1)
    try:
        await store.tenants.ensure("tn_default", "default", None, START_MS)
        endpoints = [await _endpoint(store) for _ in range(3)]
        news = tuple(NewDelivery(new_id("dlv"), e.id, START_MS) for e in endpoints)
        await store.events.insert(NewEvent(_event(), news))  # the first reads column types
        event = _event("k-1")
        news = tuple(NewDelivery(new_id("dlv"), e.id, START_MS) for e in endpoints)
        sent: list[str] = []
        async with store.db.pool.acquire() as conn:  # type: ignore[attr-defined]
            conn.add_query_logger(lambda record: sent.append(record.query))
        await store.events.insert(NewEvent(event, news))
        written = list(sent)
        again = await store.events.insert(NewEvent(_event("k-1"), ()))
        stored = await store.deliveries.of_event("tn_default", event.id)
    finally:
        await store.close()
    assert sorted(d.id for d in stored) == sorted(d.id for d in news)
    assert len(written) == 1, [q[:70] for q in written]
    assert "INSERT INTO events" in written[0] and "INSERT INTO deliveries" in written[0]
    assert "pg_notify" in written[0]
    assert again.created is False and again.event.id == event.id


async def test_a_postgres_idempotency_lookup_reads_only_its_keys_as_the_table_grows(
    postgres_database: str,
):
    """The lookup's plan is cached on its connection while `events` is nearly empty and kept as
    the table grows; it must still go to each key through the unique index, not read every
    event of the tenant and filter (a cached plan did: accept latency grew with the table)."""
    store = await open_store(postgres_database, sealer=SEALER, migrate_now_ms=START_MS, pool_size=1)
    try:
        await store.tenants.ensure("tn_default", "default", None, START_MS)
        for n in range(12):  # PostgreSQL may settle on a generic plan from the sixth execution
            await store.events.insert_many([NewEvent(_event(f"warm-{n}"), ())])
            # a repeat: only then is the key looked up (a new batch is written at once)
            await store.events.insert_many([NewEvent(_event(f"warm-{n}"), ())])
        for start in range(0, 3000, 500):
            await store.events.insert_many(
                [NewEvent(_event(f"k-{n}"), ()) for n in range(start, start + 500)]
            )
        async with store.db.pool.acquire() as conn:  # type: ignore[attr-defined]
            name, types = await conn.fetchrow(
                "SELECT name, parameter_types::text[] FROM pg_prepared_statements "
                "WHERE statement NOT LIKE '%INSERT%' AND statement LIKE '%idempotency_key%text[]%'"
            )
            values = {"text": "'tn_default'", "text[]": "'{k-7}'"}
            args = ", ".join(values[t] for t in types)
            plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {name}({args})")
    finally:
        await store.close()
    nodes, read = [json.loads(plan)[0]["Plan"]], 0
    while nodes:
        node = nodes.pop()
        read += node["Actual Rows"] * node["Actual Loops"] + node.get("Rows Removed by Filter", 0)
        read += node.get("Rows Removed by Index Recheck", 0)
        nodes += node.get("Plans", [])
    assert read <= 10, plan
