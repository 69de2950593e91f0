"""The Deliverer against real loopback servers: each kind of outcome is named correctly."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from app.clock import SystemClock
from app.delivery import Deliverer, classify_status, parse_retry_after
from app.signing import new_secret, verify
from app.testing import Receiver, free_port
from tests.conftest import make_settings

SECRET = new_secret()
BODY = b'{"parameters":{"amount":11.99},"type":"t"}'


class Behaviour:
    """A receiver whose answers the test chooses, recording what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.release = asyncio.Event()
        routes = [
            Route("/ok", self.ok, methods=["POST"]),
            Route("/status/{code:int}", self.status, methods=["POST"]),
            Route("/limited", self.limited, methods=["POST"]),
            Route("/unavailable", self.unavailable, methods=["POST"]),
            Route("/hang", self.hang, methods=["POST"]),
            Route("/redirect", self.redirect, methods=["POST"]),
            Route("/big", self.big, methods=["POST"]),
        ]
        self.app = Starlette(routes=routes)

    async def _record(self, request: Request) -> None:
        self.requests.append((dict(request.headers), await request.body()))

    async def ok(self, request: Request) -> Response:
        await self._record(request)
        return PlainTextResponse("thanks")

    async def status(self, request: Request) -> Response:
        await self._record(request)
        return PlainTextResponse("nope", status_code=request.path_params["code"])

    async def limited(self, request: Request) -> Response:
        return PlainTextResponse("slow down", status_code=429, headers={"retry-after": "120"})

    async def unavailable(self, request: Request) -> Response:
        date = "Wed, 21 Oct 2099 07:28:00 GMT"
        return PlainTextResponse("later", status_code=503, headers={"retry-after": date})

    async def hang(self, request: Request) -> Response:
        await self.release.wait()
        return PlainTextResponse("too late")

    async def redirect(self, request: Request) -> Response:
        return RedirectResponse("/ok", status_code=307)

    async def big(self, request: Request) -> Response:
        return PlainTextResponse("x" * 100_000)


@pytest.fixture
async def server() -> AsyncIterator[tuple[Behaviour, Receiver]]:
    behaviour = Behaviour()
    async with Receiver(behaviour.app) as srv:
        yield behaviour, srv
        behaviour.release.set()


@pytest.fixture
async def deliverer(tmp_path: Path) -> AsyncIterator[Deliverer]:
    settings = make_settings(tmp_path, request_timeout=0.5, connect_timeout=0.5)
    d = Deliverer.create(settings, SystemClock())
    yield d
    await d.close()


async def test_success_sends_signed_standard_webhooks_request(server, deliverer):
    """A 2xx is success; the request carries the body unchanged and every required header."""
    behaviour, srv = server
    outcome = await deliverer.send(f"{srv.url}/ok", "evt_1", BODY, (SECRET,))
    assert outcome.ok and outcome.status_code == 200 and outcome.response_body == "thanks"
    headers, body = behaviour.requests[0]
    assert body == BODY
    assert headers["content-type"] == "application/json"
    assert re.fullmatch(r"billhook/\d+\.\d+\.\d+", headers["user-agent"])
    assert headers["webhook-id"] == "evt_1"
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", headers["traceparent"])
    ts = int(headers["webhook-timestamp"])
    assert verify(SECRET, "evt_1", ts, BODY, headers["webhook-signature"])


@pytest.mark.parametrize(
    ("code", "error"), [(400, "http_4xx"), (404, "http_4xx"), (500, "http_5xx")]
)
async def test_http_errors_are_failures(server, deliverer, code: int, error: str):
    _, srv = server
    outcome = await deliverer.send(f"{srv.url}/status/{code}", "evt_1", BODY, (SECRET,))
    assert not outcome.ok
    assert (outcome.status_code, outcome.error, outcome.response_body) == (code, error, "nope")


async def test_429_reports_retry_after_and_asks_to_slow_down(server, deliverer):
    _, srv = server
    outcome = await deliverer.send(f"{srv.url}/limited", "evt_1", BODY, (SECRET,))
    assert (outcome.status_code, outcome.error, outcome.retry_after_s) == (429, "http_4xx", 120)
    assert outcome.slow_down


async def test_503_retry_after_as_http_date(server, deliverer):
    _, srv = server
    outcome = await deliverer.send(f"{srv.url}/unavailable", "evt_1", BODY, (SECRET,))
    assert outcome.error == "http_5xx" and outcome.retry_after_s is not None
    assert outcome.retry_after_s > 86400 and not outcome.slow_down


async def test_a_receiver_that_never_answers_times_out(server, deliverer):
    _, srv = server
    outcome = await deliverer.send(f"{srv.url}/hang", "evt_1", BODY, (SECRET,))
    assert outcome.error == "timeout" and outcome.status_code is None and outcome.slow_down


async def test_connection_refused(deliverer):
    outcome = await deliverer.send(f"http://127.0.0.1:{free_port()}/", "evt_1", BODY, (SECRET,))
    assert outcome.error == "connect_error" and outcome.status_code is None


async def test_redirects_are_not_followed(server, deliverer):
    """A 3xx is a failure and its target is never called (no SSRF through redirects)."""
    behaviour, srv = server
    outcome = await deliverer.send(f"{srv.url}/redirect", "evt_1", BODY, (SECRET,))
    assert (outcome.status_code, outcome.error) == (307, "http_3xx")
    assert behaviour.requests == []


async def test_response_body_is_cut_to_2_kib(server, deliverer):
    _, srv = server
    outcome = await deliverer.send(f"{srv.url}/big", "evt_1", BODY, (SECRET,))
    assert outcome.ok and outcome.response_body == "x" * 2048


async def test_egress_guard_blocks_loopback_by_default(tmp_path, server):
    """Without an allow list, loopback is refused both as a literal and through DNS."""
    behaviour, srv = server
    settings = make_settings(tmp_path, egress_allow="")
    d = Deliverer.create(settings, SystemClock())
    try:
        literal = await d.send(f"{srv.url}/ok", "evt_1", BODY, (SECRET,))
        named = await d.send(f"http://localhost:{srv.port}/ok", "evt_1", BODY, (SECRET,))
    finally:
        await d.close()
    assert literal.error == "egress_blocked" and named.error == "egress_blocked"
    assert behaviour.requests == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (200, None),
        (204, None),
        (299, None),
        (301, "http_3xx"),
        (410, "http_4xx"),
        (599, "http_5xx"),
    ],
)
def test_classify_status(status: int, error: str | None):
    assert classify_status(status) == error


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30", 30.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("Thu, 01 Jan 1970 00:01:40 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None):
    assert parse_retry_after(value, now_s=200.0) == seconds
