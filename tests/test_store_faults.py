"""The worker and the store never stuck: a cache never keeps what was read before a change, a
batch that answers wrongly fails its callers instead of leaving them waiting, a failed COMMIT
(or a failed statement sent with it) leaves no open transaction, a half-open LISTEN connection
is noticed and replaced, one outcome that cannot be recorded does not send its neighbours
again, and a failed timed job is due again soon rather than at its next slot."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from app.cache import CounterCache
from app.hub import Hub
from app.main import create_app
from app.periodic import RETRY_MS, Job, Periodic
from app.store import StoreUnusable, open_store
from app.store.batch import GroupCommit
from app.store.connector import Tx
from app.store.postgres import PostgresConnector
from app.testing import FrozenClock, Receiver
from subscribers.receiver import WebhookReceiver
from tests.conftest import API_KEY, SEALER, START_MS, HubClient, make_settings
from tests.waiting import until


async def test_a_value_loaded_across_an_invalidation_is_not_kept():
    """The endpoint cache kept an old endpoint list indefinitely when an invalidation landed
    during a load: the load finished afterwards and stored what it had read before."""
    loads: list[str] = []
    reading = asyncio.Event()
    release = asyncio.Event()

    async def load(key: str) -> str:
        loads.append(key)
        if len(loads) == 1:
            reading.set()
            await release.wait()
        return f"value {len(loads)}"

    async def counter() -> int:
        return 0

    cache: CounterCache[str, str] = CounterCache(counter, load)
    first = asyncio.create_task(cache.get("tenant"))
    await reading.wait()
    cache.invalidate()  # an endpoint changed while the first load was reading
    release.set()
    assert await first == "value 1"  # good for the caller that asked before the change
    assert await cache.get("tenant") == "value 2"  # but not kept: read again
    assert await cache.get("tenant") == "value 2"  # and this one is kept


async def test_a_counter_moving_during_a_load_drops_what_it_read():
    """The same race through another process's change (seen by the counter)."""
    version = 0
    reading = asyncio.Event()
    release = asyncio.Event()
    loads = 0

    async def counter() -> int:
        return version

    async def load(key: str) -> int:
        nonlocal loads
        loads += 1
        read = loads  # what this load read, before any later change
        if read == 1:
            reading.set()
            await release.wait()
        return read

    cache: CounterCache[str, int] = CounterCache(counter, load)
    first = asyncio.create_task(cache.get("t"))
    await reading.wait()
    version = 1
    cache.invalidate()  # the next get checks the counter at once
    second = await cache.get("t")  # sees version 1, drops, loads again
    release.set()
    assert await first == 1
    assert second == 2 and await cache.get("t") == 2  # the first load's 1 was not kept


async def test_a_batch_answering_the_wrong_number_of_results_fails_its_callers(tmp_path: Path):
    """zip(strict=True) raised inside the committing task and every caller waited forever."""
    store = await open_store(f"sqlite:///{tmp_path}/b.db", migrate_now_ms=START_MS, sealer=SEALER)

    async def apply(tx: Tx, items: list[int]) -> list[int]:
        return items[:-1]  # one result short

    group: GroupCommit[int, int] = GroupCommit(store.db, apply)
    try:
        results = await asyncio.wait_for(
            asyncio.gather(group.submit(1), group.submit(2), return_exceptions=True), 10
        )
        assert all(isinstance(r, RuntimeError) for r in results), results
    finally:
        await group.close()
        await store.close()


async def test_a_failed_commit_on_sqlite_is_rolled_back(tmp_path: Path):
    """COMMIT failed (here: a foreign key checked at commit) and the transaction stayed open:
    every later BEGIN failed ("cannot start a transaction within a transaction")."""
    store = await open_store(f"sqlite:///{tmp_path}/c.db", migrate_now_ms=START_MS, sealer=SEALER)
    connector: Any = store.db
    try:

        async def violates_at_commit(tx: Tx) -> None:
            await connector.writer.execute("PRAGMA defer_foreign_keys = ON")
            await connector.writer.execute(
                "INSERT INTO api_keys (id, tenant_id, key_hash, source, created_at) "
                "VALUES ('k', 'no-such-tenant', 'h', 'api', 0)"
            )

        with pytest.raises(sqlite3.IntegrityError):
            await store.db.transact(violates_at_commit)
        assert not connector.writer.in_transaction
        assert await store.jobs.claim("next", START_MS, 1000)  # the store still writes
    finally:
        await store.close()


async def test_a_statement_sent_with_commit_that_fails_keeps_nothing_and_no_transaction(
    postgres_database: str,
):
    """PostgreSQL sends a transaction's NOTIFY in COMMIT's round trip: should that statement
    fail, COMMIT is not run, nothing the transaction wrote is kept, and the connection goes
    back to the pool with no transaction open (the store still writes)."""
    store = await open_store(postgres_database, migrate_now_ms=START_MS, sealer=SEALER)
    try:

        async def fails_at_commit(tx: Tx) -> None:
            await tx.execute("tenant_insert", {"id": "ten_x", "name": "x", "created_at": 0})
            tx.at_commit.append("SELECT 1 / 0")  # type: ignore[attr-defined]

        with pytest.raises(asyncpg.DataError):
            await store.db.transact(fails_at_commit)
        assert await store.tenants.get("ten_x") is None
        for n in range(3):  # the connection it failed on is fit to begin again

            async def writes(tx: Tx, n: int = n) -> None:
                row = {"id": f"ten_{n}", "name": f"y{n}", "created_at": 0}
                await tx.execute("tenant_insert", row)

            await store.db.transact(writes)
            assert await store.tenants.get(f"ten_{n}") is not None
    finally:
        await store.close()


async def test_a_failed_timed_job_is_due_again_soon_not_at_its_next_slot(database_url: str):
    """Timed jobs were marked done before they ran: one that failed waited a whole slot."""
    store = await open_store(database_url, migrate_now_ms=START_MS, sealer=SEALER)
    clock = FrozenClock(START_MS)
    runs: list[int] = []

    async def flaky() -> int:
        runs.append(clock.now_ms())
        if len(runs) == 1:
            raise RuntimeError("the first run fails")
        return 1

    periodic = Periodic([Job("flaky", flaky, every_ms=3_600_000)], 0.1, clock, store.jobs)
    try:
        assert await periodic.run_once() == {"flaky": 0}
        clock.advance(RETRY_MS / 1000 - 1)
        assert await periodic.run_once() == {}  # not yet: a failed run is not hammered
        clock.advance(1)
        assert await periodic.run_once() == {"flaky": 1}  # again, an hour before its slot
        clock.advance(3599)
        assert await periodic.run_once() == {}  # succeeded: due again a slot after it began
        clock.advance(RETRY_MS / 1000)
        assert await periodic.run_once() == {"flaky": 1}
    finally:
        await store.close()


async def test_one_outcome_that_cannot_be_recorded_does_not_resend_the_others(
    hub: HubClient, receiver: tuple[WebhookReceiver, Receiver], monkeypatch: pytest.MonkeyPatch
):
    app, server = receiver
    endpoints = [await hub.endpoint(f"{server.url}?n={n}") for n in range(3)]
    app.set_secret(*(e["secret"] for e in endpoints))
    event = await hub.publish("t", {"n": 1})
    deliveries = (await hub.http.get(f"/v1/events/{event['id']}")).json()["deliveries"]
    poisoned = deliveries[0]["id"]
    store = hub.hub.store.deliveries
    real_turn = store.turn

    async def turn(finished: Any, *args: Any, **kwargs: Any) -> Any:
        if any(f.job.delivery_id == poisoned for f in finished):
            raise RuntimeError("this outcome cannot be written")
        return await real_turn(finished, *args, **kwargs)

    monkeypatch.setattr(store, "turn", turn)
    assert await hub.hub.worker.run_once() == 3
    after = (await hub.http.get(f"/v1/events/{event['id']}")).json()["deliveries"]
    status = {d["id"]: d["status"] for d in after}
    assert status.pop(poisoned) == "delivering"  # leased: sent again after its lease
    assert set(status.values()) == {"succeeded"}  # its neighbours are recorded


class Proxy:
    """A TCP proxy to PostgreSQL that can go silent (a half-open connection: no FIN, no RST,
    no bytes) for the connections it holds, while new ones pass."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.frozen: list[asyncio.StreamWriter] = []
        self.pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        pair = (writer, up_writer)
        self.pairs.append(pair)
        await asyncio.gather(
            self._pipe(reader, up_writer, pair), self._pipe(up_reader, writer, pair),
            return_exceptions=True,
        )  # fmt: skip

    async def _pipe(self, reader: Any, writer: Any, pair: Any) -> None:
        while data := await reader.read(65536):
            if pair[0] in self.frozen:
                continue  # swallowed: the peer hears nothing, and nothing closes
            if self._cut(pair, writer, data):
                return
            writer.write(data)
            await writer.drain()
        if pair[0] not in self.frozen:
            writer.close()  # one side closed: so does the other

    def cut_answer(self, asked: bytes, answer: bytes) -> None:
        """The connection that sends `asked` loses the server's reply that holds `answer`
        (the server has done the work; the client hears the connection close instead)."""
        self._cutting = (asked, answer)
        self.asked = 0

    _cutting: tuple[bytes, bytes] | None = None
    _armed: Any = None

    def _cut(self, pair: Any, writer: Any, data: bytes) -> bool:
        if self._cutting is None:
            return False
        asked, answer = self._cutting
        if writer is pair[1] and asked in data:  # to the server
            self.asked += 1
            self._armed = pair
        elif writer is pair[0] and self._armed is pair and answer in data:
            self._cutting = None
            for side in pair:
                side.close()
            return True
        return False

    def freeze_latest(self) -> None:
        """The newest connection goes silent (the LISTEN one: the pool's is older)."""
        self.frozen.append(self.pairs[-1][0])

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def proxied(url: str) -> AsyncIterator[tuple[Proxy, str]]:
    parts = urlsplit(url)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    netloc = parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    try:
        yield proxy, urlunsplit(parts._replace(netloc=netloc))
    finally:
        proxy.server.close()


async def test_a_half_open_listen_connection_is_noticed_and_replaced(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """The LISTEN connection waited for a termination that a half-open connection never
    reports: the worker was never woken by other processes again. A heartbeat finds it."""
    monkeypatch.setattr(PostgresConnector, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(PostgresConnector, "HEARTBEAT_TIMEOUT_S", 0.5)
    monkeypatch.setattr(PostgresConnector, "RELISTEN_S", 0.1)
    await (await open_store(postgres_database, migrate_now_ms=START_MS, sealer=SEALER)).close()
    notifier = await open_store(postgres_database, sealer=SEALER)
    async with proxied(postgres_database) as (proxy, url):
        listener = await open_store(url, sealer=SEALER)
        woken: list[int] = []
        listener.on_due(lambda: woken.append(1))
        try:
            await until(lambda: woken, 10)  # listening (the first wake-up)
            proxy.freeze_latest()
            await until(lambda: "LISTEN billhook_due is back" in caplog.text, 20)
            before = len(woken)
            connector: Any = notifier.db
            async with connector.pool.acquire() as conn:
                await conn.execute("NOTIFY billhook_due")
            await until(lambda: len(woken) > before, 10)
            assert "no answer to a heartbeat" in caplog.text
        finally:
            await listener.close()
            await notifier.close()


async def test_a_failed_start_leaves_no_store_open(tmp_path: Path):
    """A start that failed after connecting (here: the file is not a database) left the
    store's connection threads running: the process could never exit."""
    (tmp_path / "h.db").write_bytes(b"not a database at all\n" * 100)
    before = threading.active_count()
    with pytest.raises(StoreUnusable):
        await Hub.start(make_settings(tmp_path, database_url=f"sqlite:///{tmp_path}/h.db"))
    assert threading.active_count() == before


async def test_a_connection_lost_after_the_one_statement_accept_is_a_503_never_resent(
    postgres_database: str, tmp_path: Path
):
    """An accept on PostgreSQL is one statement committed by itself: when the connection is
    lost before its answer, the hub cannot know whether it committed. It answers 503 and does
    not send it again (a resend would write the event twice or answer it as a repeat of
    itself); the client's retry with the same id gets the one stored event."""
    async with proxied(postgres_database) as (proxy, url):
        app = create_app(make_settings(tmp_path, database_url=url))
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://hub.test",
            headers={"authorization": f"Bearer {API_KEY}"},
        ) as http:  # fmt: skip
            await http.post("/v1/event-types", json={"name": "t"})
            await http.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/a"})
            warm = {"type": "t", "parameters": {"n": 0}, "id": "warm"}  # statement prepared
            assert (await http.post("/v1/events", json=warm)).status_code == 202
            # the execution carrying this id loses its answer (CommandComplete, then Ready)
            proxy.cut_answer(b"order-1", b"SELECT 1\x00")
            body = {"type": "t", "parameters": {"n": 1}, "id": "order-1"}
            lost = await http.post("/v1/events", json=body)
            assert lost.status_code == 503, lost.text
            assert lost.json()["error"]["code"] == "unavailable"
            assert proxy.asked == 1  # the statement went to the server once, not again
            retried = await http.post("/v1/events", json=body)
            assert retried.status_code == 200, retried.text  # committed: the retry is a repeat
            listed = (await http.get("/v1/events?limit=10")).json()["data"]
            assert [e["id"] for e in listed][:1] == [retried.json()["id"]] and len(listed) == 2
            deliveries = (await http.get(f"/v1/events/{listed[0]['id']}")).json()["deliveries"]
            assert len(deliveries) == 1
