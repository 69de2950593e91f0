"""What operator commands print: a table on a terminal, tab-separated lines when piped (never
cut to a width), or JSON with --json; money always as the API writes it (exact text)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app import jsoncodec
from app.money import plain

console = Console()
WATCH_EVERY_S = 0.5  # the refresh interval of a progress bar
STALL_WARNING_S = 10.0


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


@dataclass(frozen=True, slots=True)
class ReplayState:
    """Where a replay stands, however it was read (the store, or GET /v1/replays/{id})."""

    id: str
    status: str
    matched: int
    enqueued: int
    succeeded: int
    failed: int
    pending: int


async def follow_replay(poll: Callable[[], Awaitable[ReplayState]]) -> ReplayState:
    """A progress bar until the replay is done or cancelled (Ctrl-C stops watching only), with a
    warning when nothing moves: the same on a local database and over HTTP."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        state = await poll()
        task = bar.add_task("replaying", total=max(state.matched, 1), detail="")
        seen, stalled_since = -1, time.monotonic()
        while True:
            done = state.succeeded + state.failed
            detail = f"enqueued {state.enqueued}, pending {state.pending}, failed {state.failed}"
            bar.update(task, completed=done, detail=detail)
            if state.status in ("done", "cancelled"):
                return state
            if done + state.enqueued != seen:
                seen, stalled_since = done + state.enqueued, time.monotonic()
            elif time.monotonic() - stalled_since > STALL_WARNING_S:
                bar.console.print(
                    "[yellow]no progress: is a worker running "
                    "(billhook serve or billhook worker)?[/]"
                )
                stalled_since = time.monotonic()
            await asyncio.sleep(WATCH_EVERY_S)
            state = await poll()


def replay_ended(state: ReplayState) -> None:
    say(
        f"replay {state.id} {state.status}: {state.succeeded} delivered, "
        f"{state.failed} failed, {state.pending} pending"
    )
