"""Named SQL: `-- name: x` blocks in sql/common.sql, overridden per dialect by sql/<dialect>.sql.

Queries use `:name` parameters. SQLite binds those natively; for PostgreSQL each query is
rewritten once, at load, to `$1…$n` with the parameter order kept beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str
    params: tuple[str, ...] = ()  # positional order, only for `$n` dialects


def parse(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _positional(name: str, sql: str) -> Query:
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    return Query(name, _PARAM.sub(number, sql), tuple(order))


def load(dialect: str) -> dict[str, Query]:
    folder = resources.files("app.store") / "sql"
    texts = parse((folder / "common.sql").read_text()) | parse(
        (folder / f"{dialect}.sql").read_text()
    )
    if dialect == "postgres":
        return {name: _positional(name, sql) for name, sql in texts.items()}
    return {name: Query(name, sql) for name, sql in texts.items()}


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, script) in order; a file is `NNNN_name.sql`, applied once, never edited."""
    folder = resources.files("app.store") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append((int(version), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found)
