"""The operator CLI, end to end: a real `billhook serve` process, an endpoint that goes down and
comes back, and `billhook replay` recovering everything it missed."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app import jsoncodec
from app.testing import Receiver
from tests.conftest import HubClient
from tests.processes import KEY, child_env, declare, hub_process
from tests.test_einvoice import valid
from tests.test_invoices import complete, item, seller
from tests.waiting import until

pytestmark = pytest.mark.slow  # every test here starts billhook processes

EVENTS = 30


class Merchant:
    """The merchant's system: down (503) until `up`, then it records each event's number."""

    def __init__(self) -> None:
        self.up = False
        self.received: set[int] = set()
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        if not self.up:
            return PlainTextResponse("maintenance", status_code=503)
        payload = jsoncodec.loads(await request.body())
        if payload["type"] == "t":
            self.received.add(payload["parameters"]["n"])
        return PlainTextResponse("ok")


async def billhook(db: Path | str, *args: str) -> tuple[int, str]:
    """Run a `billhook` command on the local database `db` (a SQLite file or a database URL,
    `--database`); its exit code and its output."""
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    env = child_env(BILLHOOK_DATABASE_URL=url, COLUMNS="200")
    local = () if args[0] == "migrate" else ("--database", url)  # not the default: HTTP is
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", *args, *local, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


def _settled(db: Path) -> bool:
    """Every delivery has failed for good or is held by the open circuit."""
    with sqlite3.connect(db) as raw:
        (moving,) = raw.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'delivering' "
            "OR (status = 'pending' AND next_attempt_at IS NOT NULL)"
        ).fetchone()
    return int(moving) == 0


def _replays(db: Path) -> int:
    with sqlite3.connect(db) as raw:
        return int(raw.execute("SELECT count(*) FROM replays").fetchone()[0])


async def test_an_endpoint_down_then_back_recovers_everything_with_one_command(tmp_path: Path):
    db = tmp_path / "hub.db"
    merchant = Merchant()
    headers = {"authorization": f"Bearer {KEY}"}
    # Two attempts per delivery: what fails stays failed until someone replays it.
    async with (
        Receiver(merchant.app, "/hook") as server,
        hub_process(f"sqlite:///{db}", BILLHOOK_RETRY_SCHEDULE="0s") as process,
        httpx.AsyncClient(base_url=str(process.url), headers=headers) as hub,
    ):
        endpoint = (await hub.post("/v1/endpoints", json={"url": server.url})).json()
        await _post(hub, db, range(2))  # four failures: both run out of attempts
        await _post(hub, db, range(2, EVENTS))  # the fifth failure opens the circuit: held

        since = "2026-01-01"
        code, out = await billhook(
            db, "replay", "--endpoint", endpoint["id"], "--since", since, "--dry-run"
        )
        assert code == 0, out
        # Two failed for good; the rest are held by the open circuit (or out as its probe):
        # all are counted, whatever the timing of the failures was.
        assert int(out.split()[0]) == EVENTS and _replays(db) == 0  # a dry run changes nothing

        merchant.up = True
        code, out = await billhook(db, "replay", "--endpoint", endpoint["id"], "--since", since)
        assert code == 0, out
        # The endpoint is up again, so its next probe may release what the circuit held
        # before the replay starts: the replay then has less to do, and delivers all of it.
        started = re.search(r"started: (\d+) event\(s\)", out)
        assert started and f" done: {started.group(1)} delivered, 0 failed" in out, out
        # The replay sent what had failed; starting it probed the endpoint at once, and that
        # success released what the circuit held.
        await until(lambda: merchant.received == set(range(EVENTS)), 90)

    code, out = await billhook(db, "endpoints")
    assert code == 0 and endpoint["id"] in out and "active" in out, out  # recovered
    code, out = await billhook(db, "events", "--limit", "5")
    assert code == 0 and out.count("evt_") == 5, out


async def _post(hub: httpx.AsyncClient, db: Path, numbers: range) -> None:
    await declare(hub)
    for n in numbers:
        body = {"type": "t", "parameters": {"n": n}}
        assert (await hub.post("/v1/events", json=body)).status_code == 202
    await until(lambda: _settled(db))


async def test_replay_of_an_unknown_endpoint_is_a_clear_error(tmp_path: Path):
    db = tmp_path / "hub.db"
    assert (await billhook(db, "migrate"))[0] == 0
    code, out = await billhook(db, "replay", "--endpoint", "ep_nope", "--since", "2026-11-01")
    assert code != 0 and "no endpoint ep_nope" in out


async def test_a_bad_since_names_the_option(tmp_path: Path):
    code, out = await billhook(
        tmp_path / "hub.db", "replay", "--endpoint", "ep_x", "--since", "soon"
    )
    assert code == 2 and "--since" in out


async def test_cancel_pending_drops_what_a_disabled_endpoint_kept(hub: HubClient, tmp_path: Path):
    """Re-enabling a disabled endpoint sends what it kept, unless the operator cancelled it."""
    endpoint = await hub.endpoint("http://127.0.0.1:9/x")
    patched = await hub.http.patch(f"/v1/endpoints/{endpoint['id']}", json={"status": "disabled"})
    assert patched.status_code == 200
    kept = [(await hub.publish("t", {"n": n}))["id"] for n in range(3)]
    assert await hub.drain() == 0  # held, not sent

    code, out = await billhook(hub.hub.settings.database_url, "cancel-pending", endpoint["id"])
    assert code == 0 and "3 pending" in out, out

    await hub.http.patch(f"/v1/endpoints/{endpoint['id']}", json={"status": "active"})
    assert await hub.drain() == 0
    for event_id in kept:
        [delivery] = (await hub.http.get(f"/v1/events/{event_id}")).json()["deliveries"]
        assert delivery["status"] == "cancelled"


async def test_replay_cancel_stops_a_replay_whose_deliveries_are_still_pending(hub: HubClient):
    """Everything enqueued, deliveries pending (shown running): the CLI cancels it too."""
    endpoint = await hub.endpoint("http://127.0.0.1:9/x")
    await hub.publish("t", {"n": 1})
    body = {"endpoint_id": endpoint["id"], "since": "2020-01-01", "status": "all"}
    replay_id = (await hub.http.post("/v1/replays", json=body)).json()["id"]
    await hub.hub.periodic.run_once()
    assert (await hub.http.get(f"/v1/replays/{replay_id}")).json()["status"] == "running"
    code, out = await billhook(hub.hub.settings.database_url, "replay-cancel", replay_id)
    assert code == 0 and "cancelled" in out, out
    assert (await hub.http.get(f"/v1/replays/{replay_id}")).json()["status"] == "cancelled"


async def test_invoices_finalize_list_and_show(hub: HubClient, tmp_path: Path):
    """The operator finalizes from the command line; the document and its e-invoice show."""
    await seller(hub)
    await complete(hub, items=[item("11.90")])  # net 10.00: a float would print 10.0
    db = hub.hub.settings.database_url
    code, out = await billhook(db, "invoices", "finalize")
    assert code == 0 and "INV-2026-000001" in out and "1 invoice(s) finalized" in out, out
    code, out = await billhook(db, "invoices", "finalize")
    assert code == 0 and "nothing open" in out, out
    code, out = await billhook(db, "invoices", "list")
    assert code == 0 and "INV-2026-000001" in out and "C-1" in out and "11.90 EUR" in out, out
    code, out = await billhook(db, "invoices", "show", "INV-2026-000001")
    assert code == 0 and '"invoiceNumber": "INV-2026-000001"' in out, out
    assert '"totalNetAmount": 10.00' in out and '"totalGrossAmount": 11.90' in out, out
    code, out = await billhook(db, "invoices", "show", "INV-2026-000001", "--xml")
    assert code == 0
    valid(out.encode())
    code, out = await billhook(db, "invoices", "show", "INV-2026-000999")
    assert code != 0 and "no invoice" in out
