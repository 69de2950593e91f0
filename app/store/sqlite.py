"""SQLite through aiosqlite: one writer connection (SQLite has one writer anyway) and one reader.

WAL lets the reader run beside the writer on its own thread; `synchronous=FULL` makes a commit
survive power loss, which group commit (store/batch.py) keeps cheap.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

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

log = logging.getLogger("billhook.store")

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-32768",
    "PRAGMA temp_store=MEMORY",
)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


def split_script(script: str) -> list[str]:
    """Statements of a migration, so they run inside our transaction (executescript commits)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer[:80]!r}")
    return statements


def _make_private(path: Path) -> None:
    for found in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(found.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(found, 0o600)
            log.warning(
                f"{found} was readable by others (mode {mode:o}): made 0600 (owner only)",
                extra={"path": str(found)},
            )


class _Tx:
    def __init__(self, conn: aiosqlite.Connection, sql: dict[str, queries.Query]) -> None:
        self._conn = conn
        self._sql = sql

    async def execute(self, name: str, params: Params | None = None) -> None:
        query = self._sql[name]
        await self._run(self._conn.execute_fetchall, query.sql, query.args(params))

    async def executemany(self, name: str, rows: Sequence[Params]) -> None:
        if rows:
            query = self._sql[name]
            await self._run(self._conn.executemany, query.sql, [query.args(r) for r in rows])

    async def insert(self, groups: Mapping[str, Sequence[Params]], then: str | None = None) -> None:
        """Each in turn: SQLite has no round trips to save."""
        for name, rows in groups.items():
            await self.executemany(name, rows)
        if then is not None:
            await self.execute(then)

    async def fetch(self, name: str, params: Params | None = None) -> list[Row]:
        query = self._sql[name]
        return list(await self._run(self._conn.execute_fetchall, query.sql, query.args(params)))

    async def fetchrow(self, name: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch(name, params)
        return rows[0] if rows else None

    def ids(self, values: Sequence[str]) -> Any:
        return _json_list(values)

    async def _run(self, method: Any, sql: str, args: Any) -> Any:
        try:
            return await method(sql, args)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc


class SqliteConnector:
    dialect = "sqlite"
    writers = 1  # SQLite has one writer: group commit runs one batch at a time

    def __init__(self, path: str, create: bool = True) -> None:
        self.path = path
        self.create = create
        self._sql = queries.load("sqlite")
        self._lock = asyncio.Lock()
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._durable = True  # the writer's synchronous mode: FULL unless a turn asked otherwise

    async def open(self) -> None:
        """Connect (and, failing, close what was opened: a half-open store keeps the
        process alive on aiosqlite's threads)."""
        if self.path != ":memory:":
            self._create_private()
        try:
            self._writer = await self._connect()
            self._reader = await self._connect()
            await self._reader.execute("PRAGMA query_only=1")
        except sqlite3.DatabaseError as exc:
            await self.close()
            raise StoreUnusable(
                f"BILLHOOK_DATABASE_URL: {self.path} is not a SQLite database billhook can "
                f"use ({exc}): point it at the hub's database file, or at a new path"
            ) from exc
        except BaseException:
            await self.close()
            raise

    def _create_private(self) -> None:
        """The file holds billing data and sealed secrets: it and a directory made for it are
        the owner's alone (SQLite gives its -wal and -shm files the database file's mode); an
        existing file others may read is made private, and the log says so."""
        path = Path(self.path)
        if path.exists():
            _make_private(path)
            return
        if not self.create:
            raise StoreMissing(f"no database at {self.path}")
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        try:
            for pragma in _PRAGMAS:
                await conn.execute(pragma)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    async def transact(self, work: Work[R], durable: bool = True) -> R:
        """`durable=False` commits without fsync: for bookkeeping whose loss to a power cut
        only repeats work (the worker's), never for what a 2xx promised."""
        async for attempt in retrying(_transient):
            with attempt:
                return await self._transact_once(work, durable)
        raise AssertionError("unreachable: tenacity re-raises")

    async def write(self, groups: Mapping[str, Sequence[Params]], then: str | None = None) -> None:
        """One transaction (SQLite's commit costs no round trip)."""
        await self.transact(inserting(groups, then))

    async def _transact_once(self, work: Work[R], durable: bool) -> R:
        async with self._lock:
            if durable != self._durable:
                mode = "FULL" if durable else "NORMAL"
                await self.writer.execute_fetchall(f"PRAGMA synchronous={mode}")
                self._durable = durable
            await self.writer.execute_fetchall("BEGIN IMMEDIATE")
            try:
                result = await work(_Tx(self.writer, self._sql))
                await asyncio.shield(self.writer.execute_fetchall("COMMIT"))
            except BaseException:
                # A failed COMMIT (a deferred constraint, a full disk) leaves the transaction
                # open: every later BEGIN would fail. Roll it back whatever failed.
                if self.writer.in_transaction:
                    await asyncio.shield(self.writer.execute_fetchall("ROLLBACK"))
                raise
            return result

    async def fetch(self, name: str, params: Params | None = None) -> list[Row]:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return await _Tx(self._reader, self._sql).fetch(name, params)

    async def fetchrow(self, name: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch(name, params)
        return rows[0] if rows else None

    def ids(self, values: Sequence[str]) -> Any:
        return _json_list(values)

    def listen(self, channel: str, wake: Callable[[], None]) -> None:
        """One process per SQLite file: its commits wake its worker in memory already."""

    async def migrate(self, scripts: Sequence[tuple[int, str, str]], now_ms: int) -> list[int]:
        async with self._lock:
            conn = self.writer
            await conn.execute_fetchall("BEGIN IMMEDIATE")
            try:
                applied = await self._apply(conn, scripts, now_ms)
                await conn.execute_fetchall("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await conn.execute_fetchall("ROLLBACK")
                raise
            return applied

    async def _apply(
        self, conn: aiosqlite.Connection, scripts: Sequence[tuple[int, str, str]], now_ms: int
    ) -> list[int]:
        await conn.execute_fetchall(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        )
        done = {r[0] for r in await conn.execute_fetchall("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, script in scripts:
            if version in done:
                continue
            for statement in split_script(script):
                await conn.execute_fetchall(statement)
            await conn.execute_fetchall(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, now_ms)
            )
            applied.append(version)
        return applied


def _json_list(values: Sequence[str]) -> str:
    """A list parameter: SQLite reads it back with json_each(:ids)."""
    return orjson.dumps(list(values)).decode()
