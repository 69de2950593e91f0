"""PostgreSQL through asyncpg: a pool shared by every store verb, any number of processes.

The named SQL of sql/common.sql runs here too (rewritten to `$1…$n` once, at load), with
sql/postgres.sql for what differs: `FOR NO KEY UPDATE SKIP LOCKED` claims, row locks where a
read-modify-write must not interleave, advisory locks for ordered keys, arrays instead of
json_each. `durable=False` commits with `synchronous_commit = off` (the worker's bookkeeping),
never what a 2xx promised. Lost connections and serialization failures retry the whole
transaction briefly; past that, StoreUnavailable (the API answers 503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from app.errors import StoreUnavailable
from app.store import queries
from app.store.connector import (
    IntegrityError,
    Params,
    R,
    Row,
    StoreMissing,
    StoreUnusable,
    Work,
    inserting,
    retrying,
)
from app.store.unnest import Unnest

log = logging.getLogger("billhook.store")

MIGRATION_LOCK = 0x62696C6C686F6F6B  # "billhookk": one migrating process at a time
_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # a pooled connection left mid-operation by a loss
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    ConnectionError,
    OSError,
)
_CONFLICT = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)


class _CommitUnknown(Exception):
    """The connection was lost during COMMIT: the transaction may have committed. Running the
    work again could do it twice (a second credit note), so it is not retried: the caller gets
    a 503 and retries with its idempotency key."""


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, _LOST + _CONFLICT)


# A turn of the worker commits without waiting for fsync: a power cut that loses it re-sends.
_BEGIN = {True: "BEGIN", False: "BEGIN; SET LOCAL synchronous_commit = off"}


def _commit(before: Sequence[str]) -> str:
    """COMMIT, after the parameterless statements the transaction left for it, as one simple
    query (one round trip); should one of them fail, COMMIT is not run, and the pool rolls the
    transaction back as it takes the connection back."""
    # Each statement ends on a line of its own: a trailing -- comment cannot hide its ";".
    return "".join(f"{sql}\n;\n" for sql in before) + "COMMIT"


COPY_ROWS = 32  # below this the prepared INSERT (one pipelined round trip) is kept; not tuned


def _few(
    sql: dict[str, queries.Query], groups: Mapping[str, Sequence[Params]]
) -> list[tuple[queries.Query, Sequence[Params]]]:
    """The groups that have rows, when each has few enough for one unnest statement; empty
    when there is nothing to write or some group is big enough for COPY."""
    present = [(sql[name], rows) for name, rows in groups.items() if rows]
    return present if all(len(rows) < COPY_ROWS for _, rows in present) else []


class _Tx:
    def __init__(
        self, conn: asyncpg.Connection, sql: dict[str, queries.Query], unnest: Unnest
    ) -> None:
        self._conn = conn
        self._sql = sql
        self._unnest = unnest
        self.at_commit: list[str] = []  # parameterless statements sent with COMMIT

    async def execute(self, name: str, params: Params | None = None) -> None:
        query = self._sql[name]
        with _integrity():
            await self._conn.execute(query.sql, *query.args(params))

    async def executemany(self, name: str, rows: Sequence[Params]) -> None:
        """Many rows of a plain INSERT go through COPY (bulk ingest, a busy group commit): the
        server then parses and plans nothing per row."""
        if not rows:
            return
        query, copy = self._sql[name], self._sql[name].copy
        with _integrity():
            if copy is not None and len(rows) >= COPY_ROWS:
                records = copy.records(rows)
                await self._conn.copy_records_to_table(
                    copy.table, records=records, columns=copy.columns
                )
            else:
                await self._conn.executemany(query.sql, [query.args(r) for r in rows])

    async def insert(self, groups: Mapping[str, Sequence[Params]], then: str | None = None) -> None:
        """One statement for a few rows of each (app/store/unnest.py); COPY for many."""
        few = _few(self._sql, groups)
        if few:
            with _integrity():
                await self._unnest.run(self._conn, few, self._sql[then] if then else None)
            return
        for name, rows in groups.items():
            await self.executemany(name, rows)
        if then is not None:  # its effect (a NOTIFY) comes at commit anyway: one round trip less
            self.at_commit.append(self._sql[then].sql)

    async def fetch(self, name: str, params: Params | None = None) -> list[Row]:
        query = self._sql[name]
        with _integrity():
            found: list[Row] = await self._conn.fetch(query.sql, *query.args(params))
        return found

    async def fetchrow(self, name: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch(name, params)
        return rows[0] if rows else None

    def ids(self, values: Sequence[str]) -> Any:
        return list(values)


@contextlib.contextmanager
def _integrity() -> Iterator[None]:
    """A unique or foreign key refusal is the same IntegrityError on every backend."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(str(exc)) from exc


async def _no_session_state(_: asyncpg.Connection) -> None:
    """What a pooled connection is reset with on release, after asyncpg rolls back anything
    left open: nothing more. The default runs `RESET ALL; UNLISTEN *; CLOSE ALL;
    pg_advisory_unlock_all()` — one more round trip per transaction — for session state this
    store never leaves: settings are `SET LOCAL`, locks `pg_advisory_xact_lock`, and LISTEN
    has a connection of its own."""


class PostgresConnector:
    dialect = "postgres"
    writers = 4  # group commit keeps this many batches committing at once

    HEARTBEAT_S = 15.0  # how often the LISTEN connection is asked to answer
    HEARTBEAT_TIMEOUT_S = 10.0  # … and how long it has to
    RELISTEN_S = 1.0

    def __init__(self, url: str, create: bool = True, pool_size: int = 10) -> None:
        self.url = url
        self.create = create
        self._pool_size = pool_size
        self._sql = queries.load("postgres")
        self._unnest = Unnest()
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listen_lost = False

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self._pool_size,
                statement_cache_size=512,
                max_inactive_connection_lifetime=60,
                reset=_no_session_state,
            )
        except asyncpg.InvalidCatalogNameError as exc:
            raise StoreMissing(
                f"no database at {_redacted(self.url)} ({exc}): create it (createdb) or fix "
                "BILLHOOK_DATABASE_URL"
            ) from exc
        except (
            asyncpg.InvalidAuthorizationSpecificationError,
            asyncpg.InvalidPasswordError,
        ) as exc:
            raise StoreUnusable(
                f"BILLHOOK_DATABASE_URL: PostgreSQL at {_redacted(self.url)} refused the login "
                f"({exc}): create the role or fix the user and password in the URL"
            ) from exc
        except _LOST as exc:
            raise StoreUnavailable(
                f"BILLHOOK_DATABASE_URL: cannot reach PostgreSQL at {_redacted(self.url)} "
                f"({exc}): start it, or fix the host and port in the URL"
            ) from exc
        if not self.create and not await self._migrated():
            await self.close()
            raise StoreMissing(f"no billhook schema at {_redacted(self.url)}")

    async def _migrated(self) -> bool:
        row = await self.pool.fetchrow("SELECT to_regclass('schema_migrations') IS NOT NULL AS ok")
        return bool(row and row["ok"])

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def transact(self, work: Work[R], durable: bool = True) -> R:
        """Run `work` in a transaction, again from the start after a lost connection or a
        serialization failure before COMMIT (nothing of it was kept); never after a COMMIT
        whose outcome is unknown."""
        try:
            async for attempt in retrying(_transient):
                with attempt:
                    return await self._transact_once(work, durable)
        except _CommitUnknown as exc:
            raise StoreUnavailable(f"the connection was lost while committing: {exc}") from exc
        except _LOST as exc:
            raise StoreUnavailable(f"the database does not answer: {exc}") from exc
        raise AssertionError("unreachable: tenacity re-raises")

    async def write(self, groups: Mapping[str, Sequence[Params]], then: str | None = None) -> None:
        """Few rows: one statement, committed by itself at the end of its round trip (an
        accept then costs one round trip, not BEGIN, lookup, insert and COMMIT). Many: COPY
        in a transaction."""
        few = _few(self._sql, groups)
        if not few:
            return await self.transact(inserting(groups, then))
        try:
            async with self.pool.acquire() as conn:
                try:
                    with _integrity():
                        await self._unnest.run(conn, few, self._sql[then] if then else None)
                except _LOST:
                    conn.terminate()
                    raise
        except _LOST as exc:
            raise StoreUnavailable(f"the connection was lost while writing: {exc}") from exc

    async def _transact_once(self, work: Work[R], durable: bool) -> R:
        async with self.pool.acquire() as conn:
            try:
                # One simple query, one round trip: BEGIN and the setting together (asyncpg's
                # Transaction would send them as two).
                await conn.execute(_BEGIN[durable])
                tx = _Tx(conn, self._sql, self._unnest)
                result = await work(tx)
            except _LOST:
                conn.terminate()  # never handed out again half-broken
                raise
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                raise
            try:
                await conn.execute(_commit(tx.at_commit))
            except _LOST as exc:
                conn.terminate()
                raise _CommitUnknown(str(exc)) from exc
            return result

    async def fetch(self, name: str, params: Params | None = None) -> list[Row]:
        try:
            async for attempt in retrying(_transient):
                with attempt:
                    async with self.pool.acquire() as conn:
                        try:
                            return await _Tx(conn, self._sql, self._unnest).fetch(name, params)
                        except _LOST:
                            conn.terminate()
                            raise
        except _LOST as exc:
            raise StoreUnavailable(f"the database does not answer: {exc}") from exc
        raise AssertionError("unreachable: tenacity re-raises")

    async def fetchrow(self, name: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch(name, params)
        return rows[0] if rows else None

    def ids(self, values: Sequence[str]) -> Any:
        """A list parameter: PostgreSQL reads it as an array (`= ANY(:ids)`)."""
        return list(values)

    async def migrate(self, scripts: Sequence[tuple[int, str, str]], now_ms: int) -> list[int]:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for version, name, script in scripts:
                if version in done:
                    continue
                await conn.execute(script)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)", version, name, now_ms
                )
                applied.append(version)
            return applied

    def listen(self, channel: str, wake: Callable[[], None]) -> None:
        """Call `wake` whenever any process NOTIFYs `channel`, on a connection of its own,
        reconnecting after a loss (polling covers the gap)."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(channel, wake), name="pg-listen")

    async def _listen(self, channel: str, wake: Callable[[], None]) -> None:
        while True:
            try:
                await self._listen_once(channel, wake)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN %s lost (%s); polling until it is back", channel, exc)
                self._listen_lost = True
            await asyncio.sleep(self.RELISTEN_S)

    async def _listen_once(self, channel: str, wake: Callable[[], None]) -> None:
        """Until the connection is lost; each notification wakes (and the wake-up after a
        reconnect catches what was committed meanwhile). A connection that is lost without a
        word (half-open: a failover, a NAT's timeout) is found by a query every HEARTBEAT_S
        that must answer within HEARTBEAT_TIMEOUT_S."""
        conn = await asyncio.wait_for(asyncpg.connect(self.url), self.HEARTBEAT_TIMEOUT_S)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        try:
            await conn.add_listener(channel, lambda *_: wake())
            if self._listen_lost:
                log.warning("LISTEN %s is back", channel)
                self._listen_lost = False
            wake()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.HEARTBEAT_S)
                    break
                try:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self.HEARTBEAT_TIMEOUT_S)
                except TimeoutError as exc:
                    raise ConnectionError(
                        f"no answer to a heartbeat in {self.HEARTBEAT_TIMEOUT_S:g} s"
                    ) from exc
            raise ConnectionError("the connection was closed")
        finally:
            conn.terminate()


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
