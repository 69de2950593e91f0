"""Test helpers that are real parts: a uvicorn server on a loopback port, a clock to freeze."""

from __future__ import annotations

import asyncio
import socket
from types import TracebackType
from typing import Any

import uvicorn


class FrozenClock:
    """Time that moves only when told to: day-scale rules are tested without sleeping."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


class Receiver:
    """An ASGI app (a webhook receiver, usually) served by real uvicorn on 127.0.0.1:<free port>,
    inside the running event loop, so tests drive real deliveries over real sockets."""

    def __init__(self, app: Any, path: str = "", port: int = 0, **options: Any) -> None:
        """`port`: 0 for a free one; a given one to come back where a stopped receiver was."""
        self._app = app
        self._path = path
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            **{
                "lifespan": "off",
                "log_level": "warning",
                "access_log": False,
                "timeout_graceful_shutdown": 1,
                **options,
            },
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self._path}"

    async def __aenter__(self) -> Receiver:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        deadline = asyncio.get_running_loop().time() + 10
        while not self._server.started:  # uvicorn offers no startup event to await
            if self._task.done():
                self._task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("receiver did not start within 10 s")
            await asyncio.sleep(0.005)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
