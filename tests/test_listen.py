"""`billhook listen` and `billhook trigger` against a real `billhook serve` over HTTP: the seed's
event arrives signed, verified and printed exactly as sent; forwarding passes it on with its
headers; the temporary endpoint goes when the listener stops or the hub is gone."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from asyncio.subprocess import PIPE
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.testing import Receiver
from subscribers.verify import Verifier
from tests.conftest import seed_parameters
from tests.processes import KEY, child_env, hub_process
from tests.waiting import until

pytestmark = pytest.mark.slow  # every test here starts billhook processes

SEED = "subscriptions/billingInformationAvailable"
FIXTURE = (
    Path(__file__).resolve().parent.parent / "fixtures/billing-information-available.seed.json"
)
DEADLINE_S = 30


async def command(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", *args, env=child_env(), stdout=PIPE, stderr=PIPE
    )


async def read_until(proc: asyncio.subprocess.Process, wanted: str, seen: list[str]) -> str:
    """Lines the process prints, until one contains `wanted` (within the deadline)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        line = (await asyncio.wait_for(proc.stdout.readline(), DEADLINE_S)).decode()
        if not line:
            break
        seen.append(line)
        if wanted in line:
            return line
    raise AssertionError(f"{wanted!r} never printed; printed: {''.join(seen)}")


async def test_listen_shows_a_triggered_seed_event_verified_and_exact(tmp_path: Path):
    async with hub_process(f"sqlite:///{tmp_path}/hub.db") as hub:
        assert hub.url is not None
        hub_args = ("--url", hub.url, "--key", KEY)
        listener = await command("listen", *hub_args, "--types", SEED)
        seen: list[str] = []
        secret = (await read_until(listener, "Secret:", seen)).split()[1]
        trigger = await command("trigger", SEED, *hub_args)
        out, err = await trigger.communicate()
        assert trigger.returncode == 0, err.decode()
        assert "to 1 endpoint(s)" in out.decode()
        await read_until(listener, f"{SEED} ", seen)
        body = await read_until(listener, '{"parameters"', seen)
        expected = json.loads(FIXTURE.read_text())
        assert json.loads(body) == expected  # the seed's body, as sent
        assert '"totalNetAmount":6.71' in body  # money exactly as the hub wrote it
        assert "signature verified" in seen[-2]
        assert secret.startswith("whsec_")
        listener.send_signal(signal.SIGINT)
        await read_until(listener, "removed", seen)
        assert await asyncio.wait_for(listener.wait(), DEADLINE_S) == 0
        async with httpx.AsyncClient(headers={"authorization": f"Bearer {KEY}"}) as api:
            endpoints = (await api.get(f"{hub.url}/v1/endpoints")).json()["data"]
        assert endpoints == []  # the temporary endpoint is gone


async def test_listen_forwards_with_the_headers_and_stops_when_the_hub_is_gone(tmp_path: Path):
    received: list[tuple[bytes, dict[str, str]]] = []

    async def merchant(request: Request) -> Response:
        received.append((await request.body(), dict(request.headers)))
        return PlainTextResponse("thanks", status_code=202)

    app = Starlette(routes=[Route("/hook", merchant, methods=["POST"])])
    async with Receiver(app, "/hook") as local, hub_process(f"sqlite:///{tmp_path}/h.db") as hub:
        assert hub.url is not None
        listener = await command(
            "listen", "--url", hub.url, "--key", KEY, "--forward-to", local.url
        )
        seen: list[str] = []
        secret = (await read_until(listener, "Secret:", seen)).split()[1]
        trigger = await command(
            "trigger", "invoices/invoiceFinalized", "--url", hub.url, "--key", KEY
        )
        assert await trigger.wait() == 0
        await read_until(listener, f"{local.url}: 202 thanks", seen)
        [(body, headers)] = received
        assert Verifier(secret).verify(body, headers)  # passed on as signed by the hub
        hub.proc.send_signal(signal.SIGKILL)
        await read_until(listener, "The hub is gone", seen)
        await read_until(listener, "delete it when the hub is back", seen)
        assert await asyncio.wait_for(listener.wait(), DEADLINE_S) == 0


async def test_trigger_refuses_what_it_cannot_send(tmp_path: Path):
    async with hub_process(f"sqlite:///{tmp_path}/hub.db") as hub:
        assert hub.url is not None
        unknown = await command("trigger", "no.such.type", "--url", hub.url, "--key", KEY)
        _, err = await unknown.communicate()
        assert unknown.returncode == 1 and "--data" in err.decode()
        wrong_key = await command("trigger", SEED, "--url", hub.url, "--key", "bh_" + "x" * 20)
        _, err = await wrong_key.communicate()
        assert wrong_key.returncode == 1 and "401" in err.decode()
    gone = await command("trigger", SEED, "--url", "http://127.0.0.1:9", "--key", KEY)
    _, err = await gone.communicate()
    assert gone.returncode == 1 and "cannot reach the hub" in err.decode()


async def test_a_hangup_removes_the_temporary_endpoint(tmp_path: Path):
    """SIGHUP (the terminal closed) left the endpoint active, still receiving the tenant's
    events: it ends the listener as Ctrl-C does."""
    async with hub_process(f"sqlite:///{tmp_path}/hub.db") as hub:
        assert hub.url is not None
        listener = await command("listen", "--url", hub.url, "--key", KEY)
        seen: list[str] = []
        await read_until(listener, "Secret:", seen)
        listener.send_signal(signal.SIGHUP)
        await read_until(listener, "removed", seen)
        assert await asyncio.wait_for(listener.wait(), DEADLINE_S) == 0
        async with httpx.AsyncClient(headers={"authorization": f"Bearer {KEY}"}) as api:
            assert (await api.get(f"{hub.url}/v1/endpoints")).json()["data"] == []


async def test_a_killed_listeners_endpoint_is_disabled_when_its_lease_lapses(tmp_path: Path):
    """SIGKILL gives the listener no chance to clean up: the endpoint's lease (10 s here) is
    no longer renewed, and the hub disables it and stops storing deliveries for it."""
    async with hub_process(f"sqlite:///{tmp_path}/hub.db") as hub:
        assert hub.url is not None
        listener = await command("listen", "--url", hub.url, "--key", KEY, "--lease", "10")
        await read_until(listener, "Secret:", [])
        listener.kill()
        await listener.wait()
        async with httpx.AsyncClient(
            base_url=hub.url, headers={"authorization": f"Bearer {KEY}"}
        ) as api:
            [endpoint] = (await api.get("/v1/endpoints")).json()["data"]
            assert endpoint["status"] == "active" and endpoint["lease_until"]

            async def disabled() -> bool:
                found = (await api.get(f"/v1/endpoints/{endpoint['id']}")).json()
                return found["status"] == "disabled"

            await until(disabled, 40)
            found = (await api.get(f"/v1/endpoints/{endpoint['id']}")).json()
            assert found["disabled_reason"] == "lease_expired"
            published = await api.post(
                "/v1/events", json={"type": SEED, "parameters": seed_parameters()}
            )
            assert published.json()["deliveries"] == 0
            lease = await api.post(f"/v1/endpoints/{endpoint['id']}/lease")
            assert lease.status_code == 409
