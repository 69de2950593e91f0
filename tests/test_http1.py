"""The delivery HTTP/1.1 client against raw servers: keep-alive, framing, stale connections, TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trustme

from app.clock import SystemClock
from app.delivery import Deliverer, Outcome
from app.delivery.http1 import MAX_BODY_BYTES, Client, Target, _Resolved
from app.egress import EgressPolicy
from app.signing import new_secret
from tests.conftest import make_settings
from tests.waiting import until

LOOPBACK = EgressPolicy(make_settings(Path("/tmp")).egress_allow)


class RawServer:
    """An asyncio TCP server answering each request with bytes the test chooses."""

    def __init__(self, answer: Callable[[int], bytes], close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.requests = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                self.requests += 1
                writer.write(self.answer(self.requests))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[RawServer]]]:
    servers: list[asyncio.Server] = []

    async def start(
        answer: Callable[[int], bytes], close_after: bool = False, **kw: object
    ) -> RawServer:
        raw = RawServer(answer, close_after)
        raw.server = await asyncio.start_server(raw.handle, "127.0.0.1", 0, **kw)  # type: ignore[arg-type]
        servers.append(raw.server)
        return raw

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


def _client(**kw: object) -> Client:
    return Client(LOOPBACK, **{"connect_timeout": 1.0, "total_timeout": 1.0, **kw})  # type: ignore[arg-type]


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def test_keep_alive_reuses_one_connection(serve):
    server = await serve(lambda n: OK)
    client = _client()
    for _ in range(20):
        answer = await client.post(f"http://127.0.0.1:{server.port}/hook", [], b"{}")
        assert (answer.status, answer.body) == (200, b"ok")
    assert (server.connections, server.requests) == (1, 20)
    client.close()


async def test_chunked_answer(serve):
    chunked = (
        b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    server = await serve(lambda n: chunked)
    answer = await _client().post(f"http://127.0.0.1:{server.port}/", [], b"x")
    assert (answer.status, answer.body) == (201, b"abcde")


async def test_body_delimited_by_closing_the_connection(serve):
    server = await serve(
        lambda n: b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end", close_after=True
    )
    client = _client()
    first = await client.post(f"http://127.0.0.1:{server.port}/", [], b"x")
    second = await client.post(f"http://127.0.0.1:{server.port}/", [], b"x")
    assert (first.body, second.status) == (b"until the end", 200)
    assert server.connections == 2  # `connection: close` is honoured, not pooled


async def test_a_pooled_connection_the_peer_dropped_is_replaced():
    """Keep-alive race: the peer drops an idle connection just as a request goes out on it.
    The request failed before any answer byte, so it is sent once more on a fresh one."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(1)
        writer.write(OK)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the next request on this connection …
        writer.transport.abort()  # … is dropped without an answer

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = _client()
    assert (await client.post(f"http://127.0.0.1:{port}/", [], b"x")).status == 200
    assert (await client.post(f"http://127.0.0.1:{port}/", [], b"x")).status == 200
    assert connections == 2
    client.close()
    server.close()


async def test_retry_after_header_and_big_body_are_kept_within_limits(serve):
    big = b"x" * 100_000
    server = await serve(
        lambda n: (
            b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\ncontent-length: %d\r\n\r\n%s"
            % (len(big), big)
        )
    )
    answer = await _client().post(f"http://127.0.0.1:{server.port}/", [], b"x")
    assert (answer.status, answer.retry_after, len(answer.body)) == (429, "7", 65536)


async def _outcome(port: int, client: Client | None = None) -> Outcome:
    deliverer = Deliverer(client or _client(), SystemClock())
    return await deliverer.send(f"http://127.0.0.1:{port}/", "evt_1", b"{}", (new_secret(),))


async def test_garbage_is_an_invalid_response(serve):
    """A peer that is not an HTTP server answered: that is not a connection error."""
    server = await serve(lambda n: b"SMTP ready\r\n\r\n", close_after=True)
    assert (await _outcome(server.port)).error == "invalid_response"


@pytest.mark.parametrize("interim", [b"100 Continue", b"103 Early Hints\r\nLink: </a.css>"])
async def test_interim_answers_are_skipped_and_the_pool_stays_in_step(serve, interim: bytes):
    """An interim 1xx answer was taken as the final one: the final answer to event A was then
    read as the answer to event B. Each request gets its own final answer."""
    answers = {1: b"HTTP/1.1 " + interim + b"\r\n\r\n" + OK,
               2: b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n", 3: OK}  # fmt: skip
    server = await serve(lambda n: answers[n])
    client = _client()
    url = f"http://127.0.0.1:{server.port}/"
    statuses = [(await client.post(url, [], b"x")).status for _ in range(3)]
    assert statuses == [200, 500, 200]
    assert server.connections == 1
    client.close()


async def test_switching_protocols_is_an_invalid_response(serve):
    switch = (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    )
    server = await serve(lambda n: switch + b"\x81\x00")
    assert (await _outcome(server.port)).error == "invalid_response"


async def test_a_huge_header_is_refused_without_reading_it_all(serve):
    """A receiver answering with a 20 MB header used to count as a success (and 200 MB
    blocked the event loop for seconds): headers are capped at 64 KiB."""
    huge = b"HTTP/1.1 200 OK\r\nx-padding: " + b"a" * (20 * 1024 * 1024) + b"\r\n\r\n"
    server = await serve(lambda n: huge)
    outcome = await _outcome(server.port, _client(total_timeout=10.0))
    assert (outcome.error, outcome.status_code) == ("response_too_large", None)


async def test_a_huge_body_is_refused(serve):
    body = b"x" * (MAX_BODY_BYTES + 1)
    server = await serve(
        lambda n: b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )
    outcome = await _outcome(server.port, _client(total_timeout=10.0))
    assert outcome.error == "response_too_large"


async def test_a_body_shorter_than_its_content_length_is_not_an_answer(serve):
    short = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf"
    server = await serve(lambda n: short, close_after=True)
    assert (await _outcome(server.port)).error == "invalid_response"


async def test_a_black_holed_address_does_not_eat_the_connect_budget(serve):
    """A host with two addresses, the first black-holed (its SYNs are dropped): the second is
    dialled 250 ms later (Happy Eyeballs) and the delivery succeeds, where dialling one after
    the other spent the whole connect timeout on the first."""
    server = await serve(lambda n: OK)
    hole = socket.socket()
    hole.bind(("127.0.0.2", server.port))
    hole.listen(0)
    queued = [socket.socket() for _ in range(3)]  # fill its accept queue: SYNs are then dropped
    for sock in queued:
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.2", server.port))
    client = _client(connect_timeout=30.0, total_timeout=30.0)
    client._dns["twice.test"] = _Resolved(["127.0.0.2", "127.0.0.1"], time.monotonic() + 60)
    try:
        answer = await client.post(f"http://twice.test:{server.port}/", [], b"x")
        assert answer.status == 200
    finally:
        client.close()
        for sock in (*queued, hole):
            sock.close()


async def test_dns_answers_and_idle_connections_are_evicted(serve):
    server = await serve(lambda n: OK)
    client = _client()
    await client.post(f"http://127.0.0.1:{server.port}/", [], b"x")
    assert sum(len(c) for c in client._idle.values()) == 1
    client._dns["gone.test"] = _Resolved(["127.0.0.1"], time.monotonic() - 1)
    for conns in client._idle.values():
        for conn in conns:
            conn.idle_since -= 3600
    client._sweep(time.monotonic() + 60)
    assert (client._dns, dict(client._idle)) == ({}, {})


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_tls_with_a_trusted_certificate_and_sni(serve, ca: trustme.CA):
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    server = await serve(lambda n: OK, ssl=server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    client = _client(ssl_context=client_ctx)
    answer = await client.post(f"https://localhost:{server.port}/hook", [], b"{}")
    assert answer.status == 200


async def test_untrusted_certificate_is_a_tls_error(serve, ca: trustme.CA):
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    server = await serve(lambda n: OK, ssl=server_ctx)
    deliverer = Deliverer(_client(), SystemClock())  # the system trust store: no test CA
    outcome = await deliverer.send(
        f"https://localhost:{server.port}/", "evt_1", b"{}", (new_secret(),)
    )
    assert outcome.error == "tls_error"


@pytest.mark.parametrize(
    ("url", "host", "port", "path", "header"),
    [
        ("http://example.com/a?b=1", "example.com", 80, b"/a?b=1", b"example.com"),
        ("https://example.com", "example.com", 443, b"/", b"example.com"),
        ("http://example.com:8080/x", "example.com", 8080, b"/x", b"example.com:8080"),
        ("http://[::1]:9000/h", "::1", 9000, b"/h", b"[::1]:9000"),
    ],
)
def test_target_parsing(url: str, host: str, port: int, path: bytes, header: bytes):
    target = Target.parse(url)
    assert (target.host, target.port, target.path, target.host_header) == (host, port, path, header)


async def test_tests_run_on_uvloop_like_the_server():
    """The suite exercises the loop `billhook serve` uses (uvloop's transports differ)."""
    import uvloop

    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


async def test_a_huge_trailer_is_refused_without_reading_it_all(serve):
    """A chunked answer's trailer had no cap (a 200 MB trailer froze the hub 7 s): it is capped
    like headers, and so is chunk framing (a chunk extension of any length)."""
    trailer = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
        b"x-trailer: " + b"a" * (20 * 1024 * 1024) + b"\r\n\r\n"
    )
    extension = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"2;ext=" + b"b" * (20 * 1024 * 1024) + b"\r\nok\r\n0\r\n\r\n"
    )
    for answer in (trailer, extension):
        server = await serve(lambda n, answer=answer: answer)
        outcome = await _outcome(server.port, _client(total_timeout=10.0))
        assert (outcome.error, outcome.status_code) == ("response_too_large", None)


async def test_many_small_chunks_are_not_mistaken_for_a_trailer(serve):
    body = b"".join(b"1\r\n%c\r\n" % (97 + n % 26) for n in range(60_000))
    server = await serve(
        lambda n: b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"
    )
    answer = await _client(total_timeout=10.0).post(f"http://127.0.0.1:{server.port}/", [], b"")
    assert answer.status == 200 and len(answer.body) == 60_000


@pytest.mark.parametrize("same_write", [True, False])
async def test_an_extra_unrequested_answer_never_becomes_the_next_requests_answer(
    serve, same_write: bool
):
    """A receiver that answers once more than asked desynchronized a pooled connection: 62
    attempts recorded another request's answer. A connection holding bytes nobody asked for
    is closed, never reused."""
    first = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst"
    extra = b"HTTP/1.1 500 Oops\r\ncontent-length: 5\r\n\r\nextra"
    fresh = b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nfresh"
    server = await serve(lambda n: first + extra if n == 1 else fresh)
    if not same_write:
        server.answer = lambda n: first if n == 1 else fresh
    client = _client()
    url = f"http://127.0.0.1:{server.port}/"
    assert (await client.post(url, [], b"{}")).body == b"first"
    if not same_write:
        writer = server.writers[0]
        writer.write(extra)
        await writer.drain()
        key = ("http", "127.0.0.1", server.port)
        await until(lambda: not any(c.usable(time.monotonic()) for c in client._idle[key]), 10)
    second = await client.post(url, [], b"{}")
    assert (second.status, second.body) == (201, b"fresh")
    assert server.connections == 2
    client.close()
