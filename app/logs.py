"""Logs as JSON lines (structlog), one object per line on stderr, so a deployment of several
processes can be followed from its logs: every line carries the process `role` (serve, api,
worker, …) and `pid`, and the ids it is about (`tenant_id`, `endpoint_id`, `delivery_id`,
`event_id`, `replay_id`, `job`), passed as `extra=` by the code that logs. Libraries logging
through the standard library (uvicorn, asyncpg) come out the same way.
`BILLHOOK_LOG_FORMAT=text` gives the same fields as readable lines for a terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

IDS = ("tenant_id", "endpoint_id", "delivery_id", "event_id", "replay_id", "job")
# Libraries that narrate their work at INFO: rendering one PDF wrote ~74 fontTools lines.
QUIET = ("fontTools", "fpdf", "PIL", "factur-x", "pypdf", "saxonche", "httpx", "httpcore")
# Libraries that log each failed attempt to reach their server, with a traceback: their caller
# says so once per outage (app/ingest/runner.py).
SILENT = ("pika",)


def configure(role: str, fmt: str = "json", level: int = logging.INFO) -> None:
    """Route every logger of the process to stderr through structlog's formatter."""
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _process(role),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for library in QUIET:
        logging.getLogger(library).setLevel(max(level, logging.WARNING))
    for library in SILENT:
        logging.getLogger(library).setLevel(logging.CRITICAL)
    pool = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, _OneLine) for f in pool.filters):
        pool.addFilter(_OneLine())


class _OneLine(logging.Filter):
    """While the database is away (a restart, a failover), asyncpg's pool logs a traceback at
    each attempt to reconnect; the store already says so in a line of its own. The
    exception's one line is what an operator needs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


def _process(role: str) -> Any:
    pid = os.getpid()

    def add(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("role", role)
        event.setdefault("pid", pid)
        return event

    return add
