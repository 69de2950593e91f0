"""Raw SQL against a test's database, whichever backend it is: for tests that check what the
store itself enforces (triggers, gapless numbers, what is stored at all)."""

from __future__ import annotations

import sqlite3
from typing import Any


async def rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement outside the hub (its errors propagate) and return its rows."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as raw:
            return [tuple(r) for r in raw.execute(sql).fetchall()]
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()
