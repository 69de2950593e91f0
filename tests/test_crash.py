"""Crash test: a real `billhook serve` process is SIGKILLed mid-delivery and restarted.

Everything accepted with a 2xx must reach the receiver at least once; duplicates are allowed
only for deliveries that were in flight (leased, unrecorded) at the moment of the kill.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.testing import Receiver
from subscribers.receiver import Inbox
from subscribers.verify import Verifier
from tests.processes import KEY, declare, hub_process
from tests.waiting import until

pytestmark = pytest.mark.slow  # every test here starts billhook processes

EVENTS = 500


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


def _in_flight(db: Path) -> set[str]:
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT event_id FROM deliveries WHERE status = 'delivering'")
        return {r[0] for r in rows}


async def _post_events(client: httpx.AsyncClient) -> list[str]:
    await declare(client)

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
        async with hub_process(f"sqlite:///{db}", BILLHOOK_WORKER_CONCURRENCY="8") as hub:
            proc, url = hub.proc, hub.url
            async with httpx.AsyncClient(
                base_url=str(url), headers={"authorization": f"Bearer {KEY}"}
            ) as c:
                endpoint = (await c.post("/v1/endpoints", json={"url": server.url})).json()
                receiver.verifier = Verifier(endpoint["secret"])
                accepted = await _post_events(c)
            await until(lambda: receiver.inbox.count() >= 150, 30)
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
        received_at_kill = receiver.inbox.count()
        assert received_at_kill < EVENTS, "the kill must land mid-delivery"
        in_flight = _in_flight(db)
        async with hub_process(f"sqlite:///{db}", BILLHOOK_WORKER_CONCURRENCY="8"):
            await until(lambda: receiver.inbox.ids() >= set(accepted), 60)
    assert receiver.inbox.ids() == set(accepted)
    assert set(receiver.inbox.duplicates()) <= in_flight
