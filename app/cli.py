"""The `billhook` command: serve, worker, migrate (and, later, operator commands)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Coroutine
from typing import Any

import typer
import uvicorn

from app.clock import SystemClock
from app.config import ConfigError, Settings
from app.hub import Hub
from app.main import create_app
from app.store import open_store

cli = typer.Typer(
    help="billhook: webhook notification hub for usage-based billing.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(None, **overrides)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@cli.command()
def serve() -> None:
    """Run the HTTP API and (unless BILLHOOK_WORKER=off) the delivery worker in one process."""
    settings = _settings()
    _logging()
    if not settings.run_api:
        _run_worker(settings)
        return
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)  # connections queue from now on, while the app starts
    port = sock.getsockname()[1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    typer.echo(f"billhook serving on http://{host}:{port}", err=True)
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
    )
    uvicorn.Server(config).run(sockets=[sock])


@cli.command()
def worker() -> None:
    """Run only the delivery worker (scale it apart from the API)."""
    settings = _settings(run_api=False)
    _logging()
    _run_worker(settings)


def _run_worker(settings: Settings) -> None:
    async def main() -> None:
        hub = await Hub.start(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, hub.stop_background)
        typer.echo("billhook worker running", err=True)
        try:
            await hub.run_background()
        finally:
            await hub.close()

    _run(main())


@cli.command()
def migrate() -> None:
    """Apply pending schema migrations and exit."""
    settings = _settings()

    async def main() -> None:
        store = await open_store(settings.database_url)
        try:
            applied = await store.migrate(SystemClock().now_ms())
        finally:
            await store.close()
        typer.echo(f"migrations applied: {applied or 'none (up to date)'}")

    _run(main())


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it, except on Windows
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def main() -> None:
    sys.exit(cli())
