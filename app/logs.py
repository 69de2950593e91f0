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


def _process(role: str) -> Any:
    pid = os.getpid()

    def add(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("role", role)
        event.setdefault("pid", pid)
        return event

    return add
