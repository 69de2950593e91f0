"""The HTTP server: a listening socket bound before anything else, and uvicorn on it with
timeouts that close connections of clients too slow to send a request.

uvicorn has a keep-alive timeout (between requests) but none for a request's headers or body:
a client that sends half a request keeps its connection, and a thousand of them keep a
thousand. `GuardedHttpTools` adds both, on uvicorn's own httptools protocol.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections queue from now on, while the app starts
    except OSError:
        sock.close()
        raise
    return sock


def explain(exc: OSError, host: str, port: int) -> str:
    """One line naming the variable to change."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{host}:{port} is in use by another process: stop it, or set BILLHOOK_PORT "
            "to a free port"
        )
    if exc.errno == errno.EACCES:
        return f"port {port} needs privileges: set BILLHOOK_PORT to 1024 or above"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return f"BILLHOOK_HOST={host} is not an address of this machine (try 127.0.0.1 or 0.0.0.0)"
    reason = exc.strerror or exc
    return f"cannot listen on {host}:{port} ({reason}): check BILLHOOK_HOST and BILLHOOK_PORT"


_TIMEOUT_BODY = (
    b'{"error": {"code": "request_timeout", "message": "the request was not received in time", '
    b'"details": []}}'
)
_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's headers and body."""

    read_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        """No complete request in time: answer 408 if nothing was answered yet, and close."""
        self._read_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_TIMEOUT_ANSWER)
        self.transport.close()


def protocol(read_timeout: float) -> type[GuardedHttpTools]:
    return type("Guarded", (GuardedHttpTools,), {"read_timeout": read_timeout})


def config(app: Any, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=protocol(settings.read_timeout),
        log_config=None,  # uvicorn's loggers go through app/logs.py (JSON lines) like ours
        log_level="warning",
        access_log=False,
        timeout_keep_alive=5,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
    )


def run(app: Any, sock: socket.socket, settings: Settings) -> None:
    server = uvicorn.Server(config(app, settings))
    app.state.stop_serving = lambda: setattr(server, "should_exit", True)
    server.run(sockets=[sock])
