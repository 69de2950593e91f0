"""`billhook listen` and `billhook trigger`: real signed events on a developer's machine, over
the hub's HTTP API (what `stripe listen` / `stripe trigger` give).

listen registers a temporary endpoint pointing at a listener on 127.0.0.1, verifies each
delivery with subscribers/verify.py (the file a merchant copies), prints it as sent (money
exactly), optionally forwards it with its headers to a local URL, and removes the endpoint when
it stops (Ctrl-C, SIGTERM, SIGHUP, or the hub is gone). The endpoint holds a lease the listener
renews: a listener killed outright (SIGKILL) leaves it for LEASE_S only, then the hub disables
it. trigger publishes the catalog's example of a type, or
the given parameters, so a listener shows it.

Forwarding posts to the developer's own app from the CLI process: it is not the hub's delivery
(which stays in app/delivery), just what the developer asked this tool to pass on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app import jsoncodec
from subscribers.verify import Verifier, WebhookVerificationError

Say = Callable[[str], None]
HEALTH_EVERY_S = 2.0  # the lease is renewed this often, which also tells the hub is there
LEASE_S = 30  # the hub disables the endpoint when no renewal came for this long
GONE_AFTER = 3  # failed renewals in a row
FORWARDED = ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature")


class HubUnreachable(Exception):
    """The hub answered with an error or not at all; the message says which."""


def hub_client(url: str, key: str | None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=10.0)


async def call(
    api: httpx.AsyncClient, method: str, path: str, *, raw: bool = False, **kwargs: Any
) -> Any:
    """One API call: its JSON (Decimals exact), or with `raw` its bytes; an error answer becomes
    HubUnreachable with the hub's own message."""
    try:
        answer = await api.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise HubUnreachable(f"cannot reach the hub at {api.base_url}: {exc}") from exc
    if answer.status_code >= 400:
        try:
            error = answer.json()["error"]
            message = f"{error['code']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            message = answer.text[:200]
        raise HubUnreachable(f"{method} {path} → {answer.status_code} {message}")
    if raw:
        return answer.content
    return jsoncodec.loads(answer.content) if answer.content else None


class Listener:
    """The local receiving end: verifies, prints, forwards."""

    def __init__(self, say: Say, forward_to: str | None) -> None:
        self._say = say
        self._forward_to = forward_to
        self._forward = httpx.AsyncClient(timeout=10.0)
        self.verifier: Verifier | None = None
        self.received = 0
        self.app = Starlette(routes=[Route("/", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        assert self.verifier is not None
        try:
            webhook_id = self.verifier.verify(body, request.headers)
        except WebhookVerificationError as exc:
            self._say(f"✗ rejected a delivery: {exc}")
            return PlainTextResponse("signature not verified", status_code=401)
        self.received += 1
        event_type = jsoncodec.loads(body).get("type", "?")
        self._say(f"✓ {time.strftime('%H:%M:%S')} {event_type} {webhook_id} (signature verified)")
        self._say(body.decode())
        if self._forward_to:
            await self._pass_on(body, request)
        return PlainTextResponse("ok")

    async def _pass_on(self, body: bytes, request: Request) -> None:
        assert self._forward_to is not None
        headers = {k: request.headers[k] for k in FORWARDED if k in request.headers}
        try:
            answer = await self._forward.post(self._forward_to, content=body, headers=headers)
            self._say(f"  → {self._forward_to}: {answer.status_code} {answer.text[:200]}")
        except httpx.HTTPError as exc:
            self._say(f"  → {self._forward_to}: not reached ({exc})")

    async def close(self) -> None:
        await self._forward.aclose()


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[int]:
    """`app` on 127.0.0.1:`port` (0: a free one) while the block runs; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task


async def listen(
    api: httpx.AsyncClient,
    say: Say,
    stop: asyncio.Event,
    types: list[str] | None = None,
    forward_to: str | None = None,
    port: int = 0,
    lease_s: int = LEASE_S,
) -> int:
    """Receive until `stop` is set or the hub is gone; returns how many deliveries arrived."""
    listener = Listener(say, forward_to)
    async with serving(listener.app, port) as bound:
        local = f"http://127.0.0.1:{bound}/"
        body = {
            "url": local,
            "description": "billhook listen",
            "event_types": types,
            "lease_s": lease_s,
        }
        endpoint = await call(api, "POST", "/v1/endpoints", json=body)
        listener.verifier = Verifier(endpoint["secret"])
        say(
            f"Ready: {api.base_url} delivers {', '.join(types) if types else 'every event type'} "
            f"to {local} (endpoint {endpoint['id']})"
        )
        say(f"Secret: {endpoint['secret']}  (Ctrl-C to stop)")
        try:
            await _until_stopped(api, endpoint["id"], stop, say)
        finally:
            await _remove(api, endpoint["id"], say)
            await listener.close()
    return listener.received


async def _until_stopped(
    api: httpx.AsyncClient, endpoint_id: str, stop: asyncio.Event, say: Say
) -> None:
    """Renew the endpoint's lease until stopped; stop when the hub is gone or the lease was
    lost (the hub answered 409: it disabled the endpoint)."""
    failures = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEALTH_EVERY_S)
            return
        try:
            await call(api, "POST", f"/v1/endpoints/{endpoint_id}/lease")
            failures = 0
        except HubUnreachable as exc:
            if "409" in str(exc):
                say(f"The hub ended this endpoint ({exc}); stopping.")
                return
            failures += 1
            if failures >= GONE_AFTER:
                say("The hub is gone; stopping.")
                return


async def _remove(api: httpx.AsyncClient, endpoint_id: str, say: Say) -> None:
    try:
        await call(api, "DELETE", f"/v1/endpoints/{endpoint_id}")
        say(f"Endpoint {endpoint_id} removed.")
    except HubUnreachable as exc:
        say(f"Could not remove endpoint {endpoint_id} ({exc}); delete it when the hub is back.")


async def trigger(
    api: httpx.AsyncClient, event_type: str, parameters: dict[str, Any] | None
) -> dict[str, Any]:
    """Publish the catalog's example of `event_type` (or `parameters`); the hub's answer."""
    if parameters is None:
        catalog = await call(api, "GET", "/v1/event-types")
        known = {t["name"]: t for t in catalog["data"]}
        if event_type not in known or known[event_type]["example"] is None:
            raise HubUnreachable(
                f"no example of {event_type!r} in the catalog: give --data with its parameters"
            )
        parameters = known[event_type]["example"]["parameters"]
    body = jsoncodec.dumps({"type": event_type, "parameters": parameters})
    headers = {"content-type": "application/json"}
    answer: dict[str, Any] = await call(api, "POST", "/v1/events", content=body, headers=headers)
    return answer
