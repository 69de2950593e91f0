"""A PostgreSQL failover loses nothing: two `billhook serve` processes under load on a primary
with a synchronous streaming standby (tests/pg_pair.py), given both hosts with
target_session_attrs=read-write; the primary is SIGKILLed and the standby promoted. Every event
answered 2xx — before, during and after — is delivered, signed, to the endpoint; the processes
carry on without a restart; an outage answers 503, never 500. The time from the kill to the
first 2xx again is printed (docs/deploy.md quotes it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.testing import Receiver
from subscribers.receiver import WebhookReceiver
from tests.conftest import postgres_url
from tests.pg_pair import Pair, primary_and_standby
from tests.processes import KEY, declare, hub_process
from tests.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BEFORE, AFTER = 300, 300  # events answered 2xx before the kill, and after the first 2xx again


class Load:
    """Clients posting events to every hub process in turn, recording what each answered."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self.clients = clients
        self.accepted: dict[str, tuple[float, float]] = {}  # event id → sent, answered 2xx
        self.statuses: dict[int, int] = {}
        self._stop = asyncio.Event()

    async def run(self, lanes: int = 8) -> None:
        await asyncio.gather(*(self._lane(n) for n in range(lanes)))

    async def _lane(self, lane: int) -> None:
        n = 0
        while not self._stop.is_set():
            client = self.clients[(lane + n) % len(self.clients)]
            n += 1
            body = {"type": "t", "parameters": {"lane": lane, "n": n}}
            sent = time.monotonic()
            try:
                response = await client.post("/v1/events", json=body)
            except httpx.TransportError:  # the process is alive; a timeout is the outage's
                continue
            status = response.status_code
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 202:
                self.accepted[response.json()["id"]] = (sent, time.monotonic())
            elif response.status_code == 503:
                await asyncio.sleep(0.05)  # as a client told to retry later would

    def after(self, moment: float) -> list[float]:
        """When each request sent after `moment` was answered 2xx, earliest first."""
        return sorted(answered for sent, answered in self.accepted.values() if sent > moment)

    def stop(self) -> None:
        self._stop.set()


@asynccontextmanager
async def clients(urls: list[str]) -> AsyncIterator[list[httpx.AsyncClient]]:
    headers = {"authorization": f"Bearer {KEY}"}
    opened = [httpx.AsyncClient(base_url=u, headers=headers, timeout=10) for u in urls]
    try:
        yield opened
    finally:
        for client in opened:
            await client.aclose()


async def test_a_failover_under_load_loses_no_event_answered_2xx(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if postgres_url() is None:
        pytest.skip("PostgreSQL tests run when BILLHOOK_TEST_POSTGRES_URL is set")
    endpoint = WebhookReceiver()
    async with (
        primary_and_standby() as pair,
        Receiver(endpoint.app, "/webhooks") as server,
        hub_process(pair.url) as one,
        hub_process(pair.url) as two,
    ):
        assert one.url and two.url
        async with clients([one.url, two.url]) as both:
            await _register(both[0], server.url, endpoint)
            await declare(both[0])
            load = Load(both)
            running = asyncio.create_task(load.run())
            recovered = await _fail_over(pair, load)
            load.stop()
            await running
        with capsys.disabled():
            print(f"\nfailover: standby promoted {recovered[0]:.2f} s after the primary "
                  f"was killed, first 2xx after it at {recovered[1]:.2f} s; answers "
                  f"{sorted(load.statuses.items())}")  # fmt: skip
        await until(lambda: endpoint.inbox.ids() >= set(load.accepted), 120,
                    what="every event answered 2xx delivered")  # fmt: skip
        assert one.proc.returncode is None and two.proc.returncode is None
    assert set(load.statuses) <= {202, 503}, f"an outage answers 503, never: {load.statuses}"


async def _register(client: httpx.AsyncClient, url: str, endpoint: WebhookReceiver) -> None:
    assert (await client.post("/v1/event-types", json={"name": "t"})).status_code == 201
    created = await client.post("/v1/endpoints", json={"url": url})
    assert created.status_code == 201, created.text
    endpoint.set_secret(created.json()["secret"])


async def _fail_over(pair: Pair, load: Load) -> tuple[float, float]:
    """Kill the primary once BEFORE events are in; once the hubs answer 503 (the outage
    outlasted their sub-second retries), promote the standby — what an orchestrator such as
    pg_auto_failover or Patroni does — and wait for AFTER more 2xx. Seconds from the kill to
    the promotion, and to the first 2xx of a request sent once the primary's orphaned
    backends could no longer commit (after the promotion: until then, the killed postmaster's
    children may still finish a commit the standby confirms)."""
    await until(lambda: len(load.accepted) >= BEFORE, 60, what="load before the kill")
    pair.kill_primary()
    killed = time.monotonic()
    await until(lambda: load.statuses.get(503, 0) >= 10, 60, what="the outage answered 503")
    await asyncio.to_thread(pair.promote)
    promoted = time.monotonic()
    await until(lambda: len(load.after(promoted)) >= AFTER, 120, what="2xx after promotion")
    return promoted - killed, load.after(promoted)[0] - killed
