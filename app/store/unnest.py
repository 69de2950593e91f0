"""Several plain INSERTs written to PostgreSQL in one statement, one round trip.

Each named INSERT whose values are all parameters (a `queries.Copy`) becomes a data-modifying
CTE over `unnest` of one array per column; a parameterless SELECT (NOTIFY) ends the statement.
A group commit of events and their deliveries then costs one round trip instead of one per
table. Foreign keys between them hold: their checks run once the whole statement is done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from app.store.queries import Copy, Query

# Each column's type, to cast its array: an untyped parameter cannot be unnested.
_COLUMN_TYPES = """
SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute
WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"""


class Unnest:
    """Builds (once per combination of queries) and runs the combined statements; column
    types are read from the catalog at first use of a table."""

    def __init__(self) -> None:
        self._types: dict[str, dict[str, str]] = {}
        self._statements: dict[tuple[str, ...], str] = {}

    async def run(
        self,
        conn: asyncpg.Connection,
        groups: Sequence[tuple[Query, Sequence[Mapping[str, Any]]]],
        then: Query | None,
    ) -> None:
        copies = [_copy(query) for query, _ in groups]
        key = tuple(query.name for query, _ in groups) + ((then.name,) if then else ())
        sql = self._statements.get(key)
        if sql is None:
            for copy in copies:
                if copy.table not in self._types:
                    rows = await conn.fetch(_COLUMN_TYPES, copy.table)
                    self._types[copy.table] = {r["attname"]: r["type"] for r in rows}
            sql = self._statements[key] = _statement(copies, self._types, then)
        args = [[row[name] for row in rows] for copy, (_, rows) in zip(copies, groups, strict=True)
                for name in copy.names]  # fmt: skip
        await conn.execute(sql, *args)


def _copy(query: Query) -> Copy:
    if query.copy is None:
        raise ValueError(f"{query.name} is not a plain INSERT of parameters")
    return query.copy


def _statement(
    copies: Sequence[Copy], types: Mapping[str, Mapping[str, str]], then: Query | None
) -> str:
    parts, n = [], 0
    for i, copy in enumerate(copies):
        arrays = []
        for column in copy.columns:
            n += 1
            arrays.append(f"${n}::{types[copy.table][column]}[]")
        parts.append(
            f"w{i} AS (INSERT INTO {copy.table} ({', '.join(copy.columns)})\n"
            f"    SELECT * FROM unnest({', '.join(arrays)}))"
        )
    if then is not None and then.params:
        raise ValueError(f"{then.name} takes parameters: it cannot end a combined insert")
    last = then.sql.strip().rstrip(";") if then is not None else "SELECT 1"
    return "WITH " + ",\n".join(parts) + "\n" + last
