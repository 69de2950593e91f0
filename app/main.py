"""create_app(settings): the Starlette application and its lifespan (hub + in-process worker)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware

from app.api import HANDLERS, HOT, ROUTES
from app.api.hot import HotRoutes
from app.api.request_line import RequestLine
from app.clock import Clock
from app.config import Settings
from app.console import ROUTES as CONSOLE
from app.console.render import console_aware
from app.hub import Hub

log = logging.getLogger("billhook")


def _worker_died(app: Starlette, exc: BaseException | None) -> None:
    """One clear line, then the server shuts down gracefully and `billhook serve` exits
    non-zero: an API that answers 202 while nothing is delivered is worse than a process its
    supervisor restarts. (Under another ASGI server: SIGTERM, its own graceful shutdown.)"""
    reason = f"{type(exc).__name__}: {exc}" if exc is not None else "it returned"
    log.critical(f"the background loops stopped ({reason}): the process exits to be restarted")
    app.state.failure = reason
    stop = getattr(app.state, "stop_serving", None)
    if stop is not None:
        stop()
    else:
        os.kill(os.getpid(), signal.SIGTERM)


def create_app(settings: Settings, clock: Clock | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub = await Hub.start(settings, clock)
        app.state.hub = hub
        app.state.failure = None
        for problem in await hub.tenancy.problems():
            log.warning(problem)
        if settings.run_worker or hub.ingest is not None:
            hub.start_background(lambda exc: _worker_died(app, exc))
        try:
            yield
        finally:
            if hub.background is not None:
                hub.stop_background()
                with contextlib.suppress(Exception):  # a worker that died has said so
                    await hub.background
            await hub.close()

    return Starlette(
        routes=[*ROUTES, *CONSOLE],
        exception_handlers=console_aware(HANDLERS),
        middleware=[Middleware(RequestLine), Middleware(HotRoutes, routes=HOT)],
        lifespan=lifespan,
    )
