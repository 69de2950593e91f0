"""Crash test: a real `billhook serve` process is SIGKILLed mid-delivery and restarted.

Everything accepted with a 2xx must reach the receiver at least once; duplicates are allowed
only for deliveries that were in flight (leased, unrecorded) at the moment of the kill.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.testing import Receiver
from subscribers.receiver import Inbox
from subscribers.verify import Verifier

EVENTS = 500
KEY = "bh_crash_test_key"


class SlowReceiver:
    """Verifies, stores once per webhook-id (counting repeats), and takes 40 ms per request,
    so that 500 deliveries take seconds and the kill lands in the middle of them."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.verifier: Verifier | None = None
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        assert self.verifier is not None
        webhook_id = self.verifier.verify(body, request.headers)
        await asyncio.sleep(0.04)  # the receiver's own processing time
        self.inbox.add(webhook_id, "t", body)
        return JSONResponse({"ok": True})


@asynccontextmanager
async def hub_process(
    db: Path, **overrides: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """A real `billhook serve` on `db` and a free port; `overrides` are more BILLHOOK_ settings."""
    env = {
        **os.environ,
        "BILLHOOK_DATABASE_URL": f"sqlite:///{db}",
        "BILLHOOK_PORT": "0",
        "BILLHOOK_API_KEY": KEY,
        "BILLHOOK_EGRESS_ALLOW": "127.0.0.0/8",
        "BILLHOOK_RETRY_SCHEDULE": "1s,1s,1s",
        "BILLHOOK_REQUEST_TIMEOUT": "2s",
        "BILLHOOK_CONNECT_TIMEOUT": "1s",
        "BILLHOOK_WORKER_CONCURRENCY": "8",
        "BILLHOOK_POLL_INTERVAL": "100ms",
        **overrides,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "serve", env=env, stderr=PIPE, stdout=DEVNULL
    )
    drain = None
    try:
        url = await asyncio.wait_for(_serving_url(proc), timeout=30)
        assert proc.stderr is not None
        drain = asyncio.create_task(proc.stderr.read())  # never let a full pipe block the hub
        yield proc, url
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
        if drain is not None:
            await drain


async def _serving_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    while line := (await proc.stderr.readline()).decode():
        if "serving on " in line:
            return line.split("serving on ", 1)[1].strip()
    raise AssertionError(f"hub exited with {await proc.wait()} before serving")


async def _until(condition, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _in_flight(db: Path) -> set[str]:
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT event_id FROM deliveries WHERE status = 'delivering'")
        return {r[0] for r in rows}


async def _post_events(client: httpx.AsyncClient) -> list[str]:
    async def one(n: int) -> str:
        response = await client.post("/v1/events", json={"type": "t", "parameters": {"n": n}})
        assert response.status_code == 202, response.text
        event_id: str = response.json()["id"]
        return event_id

    ids: list[str] = []
    for start in range(0, EVENTS, 50):
        ids += await asyncio.gather(*(one(n) for n in range(start, start + 50)))
    return ids


async def test_sigkill_mid_delivery_loses_nothing(tmp_path: Path):
    db = tmp_path / "crash.db"
    receiver = SlowReceiver()
    async with Receiver(receiver.app, "/hook") as server:
        async with hub_process(db) as (proc, url):
            async with httpx.AsyncClient(
                base_url=url, headers={"authorization": f"Bearer {KEY}"}
            ) as c:
                endpoint = (await c.post("/v1/endpoints", json={"url": server.url})).json()
                receiver.verifier = Verifier(endpoint["secret"])
                accepted = await _post_events(c)
            await _until(lambda: receiver.inbox.count() >= 150, 30)
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
        received_at_kill = receiver.inbox.count()
        assert received_at_kill < EVENTS, "the kill must land mid-delivery"
        in_flight = _in_flight(db)
        async with hub_process(db):
            await _until(lambda: receiver.inbox.ids() >= set(accepted), 60)
    assert receiver.inbox.ids() == set(accepted)
    assert set(receiver.inbox.duplicates()) <= in_flight
