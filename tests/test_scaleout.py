"""Several hub processes on one PostgreSQL, real receivers on loopback: API processes and
worker processes apart, a serve process killed with SIGKILL, PostgreSQL restarted under load.
Nothing accepted with a 2xx is lost, no delivery is in flight in two workers at once, invoice
numbers stay gapless."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.ids import new_id
from app.testing import Receiver
from subscribers.verify import Verifier
from tests.processes import KEY, declare, hub_process
from tests.waiting import until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # processes started
LEASE_S = 2 * 2 + 1  # 2 × BILLHOOK_REQUEST_TIMEOUT + BILLHOOK_CONNECT_TIMEOUT (tests/processes)
AUTH = {"authorization": f"Bearer {KEY}"}


class Arrivals:
    """An ASGI receiver for many endpoints (one path each): verifies every signature and
    notes when each webhook-id arrived at each path."""

    def __init__(self) -> None:
        self.verifiers: dict[str, Verifier] = {}
        self.seen: defaultdict[tuple[str, str], list[float]] = defaultdict(list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        webhook_id = self.verifiers[scope["path"]].verify(body, headers)
        self.seen[(scope["path"], webhook_id)].append(int(headers["webhook-timestamp"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def delivered(self) -> set[tuple[str, str]]:
        return set(self.seen)

    def copies_sent_within_a_lease(self) -> list[tuple[str, str]]:
        """Deliveries the hub sent again before the first attempt's lease could have run out,
        judged by the times the hub itself wrote on the attempts (their webhook-timestamp),
        not by when the test saw them: two workers holding one delivery at once."""
        too_soon = LEASE_S - 1  # webhook-timestamp is whole seconds
        return [key for key, sent in self.seen.items()
                if any(b - a < too_soon for a, b in itertools.pairwise(sorted(sent)))]  # fmt: skip


async def _endpoints(api: httpx.AsyncClient, server: Receiver, arrivals: Arrivals, n: int) -> None:
    for path in (f"/e{i}" for i in range(n)):
        created = await api.post("/v1/endpoints", json={"url": f"{server.url}{path}"})
        assert created.status_code == 201, created.text
        arrivals.verifiers[path] = Verifier(created.json()["secret"])


async def _publish(clients: list[httpx.AsyncClient], count: int) -> list[str]:
    """`count` events spread over the clients, 32 in flight; the ids answered 202 (or 200: a
    retry of one whose answer was lost). Each event has an id, so a request that met a closed
    keep-alive connection is sent again the way a producer should, without a duplicate."""
    accepted: list[str] = []
    numbers = iter(range(count))
    batch = new_id("b")
    await declare(clients[0])

    async def lane(client: httpx.AsyncClient) -> None:
        for n in numbers:
            body = {"type": "t", "parameters": {"n": n}, "id": f"{batch}-{n}"}
            answer = await _post(client, body)
            assert answer.status_code in (200, 202), answer.text
            accepted.append(answer.json()["id"])

    await asyncio.gather(*(lane(clients[i % len(clients)]) for i in range(32)))
    return accepted


async def _post(client: httpx.AsyncClient, body: dict[str, Any], tries: int = 3) -> httpx.Response:
    for _ in range(tries - 1):
        with contextlib.suppress(httpx.TransportError):
            return await client.post("/v1/events", json=body)
    return await client.post("/v1/events", json=body)


@contextlib.asynccontextmanager
async def clients(*urls: str | None) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=str(url), headers=AUTH, timeout=30)
            )
            for url in urls
        ]


async def test_two_api_and_four_worker_processes_deliver_everything_once(postgres_database):
    arrivals = Arrivals()
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(Receiver(arrivals))
        apis = [await stack.enter_async_context(hub_process(postgres_database, "api"))
                for _ in range(2)]  # fmt: skip
        for _ in range(4):
            await stack.enter_async_context(
                hub_process(postgres_database, "worker", BILLHOOK_WORKER_CONCURRENCY="64")
            )
        api = await stack.enter_async_context(clients(*(p.url for p in apis)))
        await _endpoints(api[0], server, arrivals, 3)
        accepted = await _publish(api, 20_000)
        wanted = {(f"/e{i}", event_id) for event_id in accepted for i in range(3)}
        await until(lambda: arrivals.delivered() >= wanted, 480, interval=0.5)
        assert arrivals.delivered() == wanted and len(wanted) == 60_000
        assert arrivals.copies_sent_within_a_lease() == []
        await _invoices_race(api)


async def _invoices_race(api: list[httpx.AsyncClient]) -> None:
    """Finalizations racing from both API processes: numbers gapless, each item once."""
    seller = {"name": "S", "countryCode": "DE", "vatId": "DE123456789"}
    assert (await api[0].put("/v1/seller", json=seller)).status_code == 200
    for n in range(30):
        completion = {"transactionId": f"t{n}", "customerNumber": f"C-{n % 10}",
                      "externalContractId": "K", "currency": "EUR",
                      "billingStartDate": "2026-11-01", "billingEndDate": "2026-11-01",
                      "billToAddress": {"countryCode": "DE"},
                      "items": [{"productID": "P", "description": "d", "quantity": 1,
                                 "grossUnitPrice": 10, "vatPercent": 19}]}  # fmt: skip
        assert (await api[n % 2].post("/v1/usage-completions", json=completion)).status_code == 202
    answers = await asyncio.gather(*(c.post("/v1/invoices/finalize", json={}) for c in api * 4))
    made = [i for a in answers for i in a.json()["invoices"]]
    assert sorted(i["number"] for i in made) == [f"INV-2026-{n:06d}" for n in range(1, 11)]


async def test_a_serve_process_killed_under_load_loses_nothing(postgres_database):
    """One of two `serve` processes is SIGKILLed while both accept and deliver: the other
    finishes everything, re-claiming the dead one's leases once they expire."""
    arrivals = Arrivals()
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(Receiver(arrivals))
        doomed = await stack.enter_async_context(hub_process(postgres_database, "serve"))
        survivor = await stack.enter_async_context(hub_process(postgres_database, "serve"))
        both = await stack.enter_async_context(clients(doomed.url, survivor.url))
        await _endpoints(both[1], server, arrivals, 2)
        accepted = await _publish(both, 3_000)
        doomed.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(doomed.proc.wait(), 10)
        accepted += await _publish(both[1:], 1_000)
        wanted = {(f"/e{i}", event_id) for event_id in accepted for i in range(2)}
        await until(lambda: arrivals.delivered() >= wanted, 120, interval=0.5)
    assert arrivals.delivered() == wanted


async def test_postgresql_restarted_under_load(postgres_database):
    """While PostgreSQL is down the hub answers 503 with Retry-After — never a 500, never a
    2xx it then loses — and once it is back the hub reconnects by itself and the backlog
    drains. (A plain `restart` is usually absorbed by the store's own retries.)"""
    arrivals = Arrivals()
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(Receiver(arrivals))
        hub = await stack.enter_async_context(hub_process(postgres_database, "serve"))
        [client] = await stack.enter_async_context(clients(hub.url))
        await _endpoints(client, server, arrivals, 1)
        accepted: list[str] = []
        statuses: list[tuple[int, str | None]] = []
        stop = asyncio.Event()

        async def load() -> None:
            for n in itertools.count():
                if stop.is_set():
                    return
                with contextlib.suppress(httpx.TransportError):
                    answer = await client.post(
                        "/v1/events", json={"type": "t", "parameters": {"n": n}}
                    )
                    statuses.append((answer.status_code, answer.headers.get("retry-after")))
                    if answer.status_code == 202:
                        accepted.append(answer.json()["id"])

        await declare(client)
        loaders = [asyncio.create_task(load()) for _ in range(8)]
        await until(lambda: len(accepted) >= 300, 60)
        await asyncio.to_thread(_postgres, "stop")  # away until the hub has said so
        await until(lambda: any(status == 503 for status, _ in statuses), 60)
        await asyncio.to_thread(_postgres, "start")
        count = len(accepted)
        await until(lambda: len(accepted) >= count + 300, 60)  # it reconnected by itself
        stop.set()
        await asyncio.gather(*loaders)
        wanted = {("/e0", event_id) for event_id in accepted}
        await until(lambda: arrivals.delivered() >= wanted, 120, interval=0.5)
    logs = b"".join(hub.said).decode()[-4000:]
    assert {status for status, _ in statuses} <= {202, 503}, logs
    assert any(status == 503 for status, _ in statuses), "the restart was not noticed"
    assert all(retry is not None for status, retry in statuses if status == 503)


def _postgres(action: str) -> None:
    """Stop or start this machine's cluster (a restart whose gap the test controls)."""
    version = subprocess.run(
        "ls /etc/postgresql | sort -V | tail -n 1", shell=True, check=True,
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action, "--", "-w"],
        check=True,
    )
