"""create_app(settings): the Starlette application and its lifespan (hub + in-process worker)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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


def create_app(settings: Settings, clock: Clock | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub = await Hub.start(settings, clock)
        app.state.hub = hub
        if (problem := await hub.tenancy.unreachable()) is not None:
            log.warning(problem)
        background = asyncio.create_task(hub.run_background()) if settings.run_worker else None
        try:
            yield
        finally:
            if background is not None:
                hub.stop_background()
                await background
            await hub.close()

    return Starlette(
        routes=[*ROUTES, *CONSOLE],
        exception_handlers=console_aware(HANDLERS),
        middleware=[Middleware(RequestLine), Middleware(HotRoutes, routes=HOT)],
        lifespan=lifespan,
    )
