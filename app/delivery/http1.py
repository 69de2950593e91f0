"""A lean HTTP/1.1 client for webhook POSTs: keep-alive pools, httptools to parse answers.

Why not aiohttp or httpx: on the reference machine aiohttp spends ~145 µs of CPU per request
(httpx ~1.5 ms), which caps one process below the 8,000 deliveries/s target before the hub does
any work of its own; this client spends ~32 µs (docs/decisions.md). It does only what delivery
needs: POST with a known length, HTTP/1.1 keep-alive, TLS with SNI and verification, connect and
total timeouts, no redirects, no cookies, no proxies, and the SSRF guard on the address dialled.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import aiohappyeyeballs
import httptools

from app.egress import EgressBlocked, EgressPolicy

BODY_LIMIT = 65536  # what is kept of an answer; the rest is read and dropped
MAX_HEADER_BYTES = 64 * 1024  # an answer's status line and headers, and so its trailers
FEED_BYTES = 16 * 1024  # the parser is fed this much at a time, so caps are checked as it goes
MAX_BODY_BYTES = 1024 * 1024  # an answer's body: more is not a webhook acknowledgement
IDLE_SECONDS = 30.0  # an idle pooled connection older than this is closed, not reused
DNS_SECONDS = 30.0
SWEEP_SECONDS = 10.0  # how often expired DNS entries and idle connections are dropped
HAPPY_EYEBALLS_DELAY = 0.25  # RFC 8305: the next address is tried this long after the last


class AttemptTimeout(Exception):
    """The attempt ran out of time (connect or total)."""


class ProtocolError(Exception):
    """The peer did not answer with valid HTTP/1.1 (or switched protocols)."""


class AnswerTooLarge(ProtocolError):
    """The answer's headers or body exceeded what an acknowledgement can need."""


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed URL: where to connect and what to put on the request line."""

    scheme: str
    host: str
    port: int
    path: bytes
    host_header: bytes

    @classmethod
    def parse(cls, url: str) -> Target:
        return _parse(url)


@functools.lru_cache(maxsize=4096)
def _parse(url: str) -> Target:
    """Parsed once per endpoint URL, not once per attempt."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    host_header = netloc if port == default else f"{netloc}:{port}"
    return Target(parts.scheme, parts.hostname, port, path.encode(), host_header.encode())


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; carries one request at a time.

    Interim answers (100 Continue, 103 Early Hints) are skipped: the answer is the final one,
    so a pooled connection never falls out of step with its requests; bytes no request asked
    for (an extra answer) make the connection unusable, never the next request's answer.
    Headers, body, chunk framing and trailers are capped, so a hostile receiver cannot make the
    parser (and the event loop) chew for long.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.body: list[bytes] = []
        self.size = 0
        self.head_bytes = 0
        self.retry_after: str | None = None
        self.framed = False  # Content-Length or chunked: the answer does not end with the EOF
        self.keep_alive = False
        self.idle_since = 0.0
        self.got_bytes = False
        self.headers_done = False
        self.stray = False  # bytes came that no request asked for: never reuse
        self.body_seen = False  # body bytes in the slice being fed
        self.gap = 0  # bytes fed since the last body bytes: chunk framing and trailers

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self.waiter is None:  # nothing was asked: an extra answer, or garbage
            self._unusable()
            return
        for start in range(0, len(data), FEED_BYTES):
            part = data[start : start + FEED_BYTES] if len(data) > FEED_BYTES else data
            if not self._feed(part):
                return

    def _feed(self, part: bytes) -> bool:
        """Parse one slice; False once the answer failed or is complete."""
        if not self.headers_done:
            self.head_bytes += len(part)
        self.body_seen = False
        try:
            self.parser.feed_data(part)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the receiver switched protocols (101)"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"invalid HTTP answer: {exc}"))
        if self.waiter is None:
            return False
        if not self.headers_done and self.head_bytes > MAX_HEADER_BYTES:
            self._fail(AnswerTooLarge(f"answer headers exceed {MAX_HEADER_BYTES // 1024} KiB"))
            return False
        self.gap = 0 if self.body_seen or not self.headers_done else self.gap + len(part)
        if self.gap > MAX_HEADER_BYTES:
            limit = MAX_HEADER_BYTES // 1024
            self._fail(AnswerTooLarge(f"answer trailers or chunk framing exceed {limit} KiB"))
            return False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.keep_alive = False
        if self.headers_done and not self.framed and self.waiter is not None:
            self.on_message_complete()  # a body delimited by the connection's end
            return
        if self.headers_done and exc is None:
            exc = ProtocolError(f"the connection closed after {self.size} body bytes")
        self._fail(exc or ConnectionResetError("connection closed before an answer"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.waiter is None:  # a second answer after the one asked for
            self._unusable()
            return
        self.body, self.size, self.retry_after = [], 0, None
        self.framed = self.headers_done = False
        self.gap = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done:
            return  # a trailer: nothing of it is wanted
        lowered = name.lower()
        if lowered == b"retry-after":
            self.retry_after = value.decode("latin-1")
        elif lowered in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.head_bytes = 0

    def on_body(self, chunk: bytes) -> None:
        self.body_seen = True
        if self.size < BODY_LIMIT:
            self.body.append(chunk[: BODY_LIMIT - self.size])
        self.size += len(chunk)
        if self.size > MAX_BODY_BYTES:
            self._fail(AnswerTooLarge(f"answer body exceeds {MAX_BODY_BYTES // 1024} KiB"))

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.headers_done = False  # an interim answer: the final one follows
            return
        if status == 101:
            self._fail(ProtocolError("the receiver switched protocols (101)"))
            return
        self.keep_alive = self.parser.should_keep_alive()
        answer = Answer(status, b"".join(self.body), self.retry_after)
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    # use
    def send(self, data: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        # The parser is reused: a pooled connection only comes back after a complete answer.
        self.got_bytes = self.headers_done = False
        self.head_bytes = self.gap = 0
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def usable(self, now: float) -> bool:
        transport = self.transport
        return (
            transport is not None
            and not transport.is_closing()
            and not self.stray
            and now - self.idle_since < IDLE_SECONDS
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _unusable(self) -> None:
        self.stray = True
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: BaseException) -> None:
        self.keep_alive = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()  # stop reading now: nothing more of this answer is wanted


@dataclass
class _Resolved:
    addresses: list[str]
    until: float


@dataclass
class Client:
    """Connection pools keyed by (scheme, host, port), shared by every delivery."""

    policy: EgressPolicy
    connect_timeout: float
    total_timeout: float
    ssl_context: ssl.SSLContext = field(default_factory=ssl.create_default_context)
    _idle: dict[tuple[str, str, int], list[_Connection]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _dns: dict[str, _Resolved] = field(default_factory=dict)
    _swept_at: float = 0.0

    async def post(self, url: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
        """POST and read the answer within the total timeout; raises on any failure to."""
        target = Target.parse(url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_timeout
        request = _request(target, headers, body)
        self._sweep(time.monotonic())
        conn, reused = await self._connection(target, deadline)
        try:
            answer = await self._exchange(conn, request, deadline)
        except (ConnectionError, ProtocolError):
            # A pooled connection the peer closed while idle fails before any answer byte:
            # send once more on a fresh one (receivers de-duplicate by webhook-id anyway).
            if not reused or conn.got_bytes:
                raise
            conn, _ = await self._connection(target, deadline, fresh=True)
            answer = await self._exchange(conn, request, deadline)
        self._release(target, conn)
        return answer

    async def _exchange(self, conn: _Connection, request: bytes, deadline: float) -> Answer:
        loop = asyncio.get_running_loop()
        waiter = conn.send(request)
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            return await waiter
        except BaseException:
            conn.close()
            raise
        finally:
            timer.cancel()

    def _release(self, target: Target, conn: _Connection) -> None:
        transport = conn.transport
        if conn.keep_alive and not conn.stray and transport and not transport.is_closing():
            conn.idle_since = time.monotonic()
            self._idle[(target.scheme, target.host, target.port)].append(conn)
        else:
            conn.close()

    def _sweep(self, now: float) -> None:
        """Drop expired DNS answers and idle connections that are stale or closed, so that
        neither cache grows with every host ever delivered to."""
        if now - self._swept_at < SWEEP_SECONDS:
            return
        self._swept_at = now
        for host in [h for h, r in self._dns.items() if r.until <= now]:
            del self._dns[host]
        for key in list(self._idle):
            usable = []
            for conn in self._idle[key]:
                if conn.usable(now):
                    usable.append(conn)
                else:
                    conn.close()
            if usable:
                self._idle[key] = usable
            else:
                del self._idle[key]

    async def _connection(
        self, target: Target, deadline: float, fresh: bool = False
    ) -> tuple[_Connection, bool]:
        if not fresh:
            idle = self._idle.get((target.scheme, target.host, target.port))
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if conn.usable(now):
                    return conn, True
                conn.close()
        return await self._connect(target, deadline), False

    async def _connect(self, target: Target, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        budget = min(self.connect_timeout, deadline - loop.time())
        try:
            async with asyncio.timeout(budget):
                addresses = await self._resolve(target.host)
                return await self._dial(target, addresses)
        except TimeoutError as exc:
            raise AttemptTimeout("connect timed out") from exc

    async def _dial(self, target: Target, addresses: list[str]) -> _Connection:
        """Happy Eyeballs (RFC 8305, with aiohappyeyeballs): the next address is tried 250 ms
        after the last, so one black-holed address does not eat the whole connect budget."""
        infos = [_address_info(address, target.port) for address in addresses]
        sock = await aiohappyeyeballs.start_connection(
            infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1
        )
        tls = self.ssl_context if target.scheme == "https" else None
        try:
            _, conn = await asyncio.get_running_loop().create_connection(
                _Connection, sock=sock, ssl=tls, server_hostname=target.host if tls else None
            )
        except BaseException:
            sock.close()
            raise
        return conn

    async def _resolve(self, host: str) -> list[str]:
        """Allowed addresses only: the address checked is the address dialled."""
        if self.policy.check_ip_literal(host):
            return [host.strip("[]")]
        cached = self._dns.get(host)
        if cached is not None and cached.until > time.monotonic():
            return cached.addresses
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [a for a in found if self.policy.allows(a)]
        if not allowed:
            raise EgressBlocked(f"{host} resolves only to non-public addresses")
        self._dns[host] = _Resolved(allowed, time.monotonic() + DNS_SECONDS)
        return allowed

    def close(self) -> None:
        for connections in self._idle.values():
            for conn in connections:
                conn.close()
        self._idle.clear()
        self._dns.clear()


def _address_info(address: str, port: int) -> aiohappyeyeballs.AddrInfoType:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


def _expire(waiter: asyncio.Future[Answer]) -> None:
    if not waiter.done():
        waiter.set_exception(AttemptTimeout("no complete answer in time"))


def _request(target: Target, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    lines = [b"POST ", target.path, b" HTTP/1.1\r\nhost: ", target.host_header]
    lines += [b"\r\ncontent-length: ", str(len(body)).encode(), b"\r\n"]
    for name, value in headers:
        lines += [name, b": ", value, b"\r\n"]
    lines += [b"\r\n", body]
    return b"".join(lines)
