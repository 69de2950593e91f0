"""Named SQL: `-- name: x` blocks in sql/common.sql, overridden per dialect by sql/<dialect>.sql.

Queries use `:name` parameters, rewritten once, at load, to numbered ones (`$1…$n` for
PostgreSQL, `?1…?n` for SQLite) with the parameter order kept beside them: a row is bound as a
tuple, which SQLite binds in a third of the time it takes to look each name up in a dict.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from operator import itemgetter
from typing import Any

_INSERT = re.compile(r"INSERT INTO (\w+) \(([^)]*)\)\s*VALUES \(([^)]*)\);?", re.IGNORECASE)
_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str
    params: tuple[str, ...] = ()  # the order of the numbered parameters
    copy: Copy | None = None  # a plain INSERT … VALUES: what bulk copy needs to run it
    _get: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_get", itemgetter(*self.params) if self.params else None)

    def args(self, values: Mapping[str, Any] | None) -> tuple[Any, ...]:
        """The values of a `:name` mapping in the numbered parameters' order."""
        if self._get is None:
            return ()
        found = self._get(values if values is not None else {})
        return found if len(self.params) > 1 else (found,)


@dataclass(frozen=True, slots=True)
class Copy:
    """An INSERT of one row per parameter set whose values are all parameters, as a table, its
    columns and the parameter each takes: PostgreSQL loads many rows of it with COPY instead
    of one INSERT each."""

    table: str
    columns: tuple[str, ...]
    names: tuple[str, ...]  # the parameter of each column, in order
    _get: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_get", itemgetter(*self.names))

    def records(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        get = self._get
        return [get(row) for row in rows]


def _copy(sql: str) -> Copy | None:
    """The Copy of `INSERT INTO t (a, b) VALUES (:x, :y)`; None for anything else (constants,
    expressions, ON CONFLICT, RETURNING, a single column)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    found = _INSERT.fullmatch("\n".join(lines).strip())
    if found is None:
        return None
    columns = tuple(c.strip() for c in found.group(2).split(","))
    values = tuple(v.strip() for v in found.group(3).split(","))
    if len(columns) < 2 or len(values) != len(columns):
        return None
    if not all(_PARAM.fullmatch(v) for v in values):
        return None
    return Copy(found.group(1), columns, tuple(v[1:] for v in values))


class DuplicateQuery(ValueError):
    """Two queries of one file share a name: the later would silently replace the earlier."""


def parse(text: str, source: str = "sql") -> dict[str, str]:
    parts = _NAME.split(text)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in found:
            raise DuplicateQuery(f"{source} names two queries {name!r}")
        found[name] = body.strip()
    return found


_MARKS = {"postgres": "$", "sqlite": "?"}


def _positional(name: str, sql: str, mark: str) -> Query:
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"{mark}{order.index(match.group(1)) + 1}"

    numbered = _PARAM.sub(number, sql)
    return Query(name, numbered, tuple(order), _copy(sql))


def load(dialect: str) -> dict[str, Query]:
    folder = resources.files("app.store") / "sql"
    # A dialect's file replaces common queries on purpose; one file never names a query twice.
    texts = parse((folder / "common.sql").read_text(), "common.sql") | parse(
        (folder / f"{dialect}.sql").read_text(), f"{dialect}.sql"
    )
    return {name: _positional(name, sql, _MARKS[dialect]) for name, sql in texts.items()}


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, script) in order; a file is `NNNN_name.sql`, applied once, never edited."""
    folder = resources.files("app.store") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append((int(version), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found)
