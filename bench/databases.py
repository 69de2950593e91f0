"""Where a scenario's hub keeps its data: a fresh SQLite file, or a fresh schema in the machine's
PostgreSQL (BILLHOOK_BENCH_POSTGRES_URL, default the local `test` database); raw SQL for the
scenarios' own counts and sizes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

POSTGRES = os.environ.get(
    "BILLHOOK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def new_database(workdir: Path, backend: str, name: str) -> str:
    """A database URL nobody used yet."""
    tag = f"{name}_{uuid.uuid4().hex[:6]}"
    if backend == "sqlite":
        return f"sqlite:///{workdir / (tag + '.db')}"
    schema = f"bench_{tag}"
    query(POSTGRES, f"CREATE SCHEMA {schema}")
    return f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}search_path={schema}"


def drop(url: str) -> None:
    """Give a PostgreSQL schema back (SQLite files go with the work directory)."""
    if url.startswith("postgres"):
        schema = url.rsplit("search_path=", 1)[1]
        query(POSTGRES, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    return asyncio.run(_pg(url, sql, *args))


async def _pg(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def table_mb(url: str, *tables: str) -> float:
    """What the tables take on disk (PostgreSQL: with their indexes and TOAST, and a
    partitioned table's partitions: the parent itself holds nothing)."""
    total = 0
    for table in tables:
        [(size,)] = query(
            url,
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
            f"FROM pg_partition_tree('{table}')",
        )
        total += int(size)
    return total / 1e6
