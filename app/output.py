"""What operator commands print: a table on a terminal, tab-separated lines when piped (never
cut to a width), or JSON with --json; money always as the API writes it (exact text)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from app import jsoncodec
from app.money import plain

console = Console()


def text(value: Any) -> str:
    """A cell: money and numbers in plain notation, nothing as the empty string."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value)
    return str(value)


def show(headers: Sequence[str], rows: Sequence[Sequence[Any]], data: Any, as_json: bool) -> None:
    """Rows as a table (terminal) or TSV (pipe); `data` as JSON with --json."""
    if as_json:
        sys.stdout.write(jsoncodec.dumps(data, indent=True).decode() + "\n")
        return
    cells = [[text(v) for v in row] for row in rows]
    if not sys.stdout.isatty():
        for line in [list(headers), *cells]:
            sys.stdout.write("\t".join(c.replace("\t", " ") for c in line) + "\n")
        return
    table = Table(*headers)
    for row in cells:
        table.add_row(*row)
    console.print(table)


def document(data: Any) -> None:
    """One document (an invoice) as JSON, exactly as stored."""
    sys.stdout.write(jsoncodec.dumps(data, indent=True).decode() + "\n")


def say(message: str) -> None:
    console.print(message, soft_wrap=True)
