"""The operator commands over HTTP, as a hub on another machine is run: a real `billhook serve`
process, the commands given `--url` and a key (no database), listings as TSV when piped
(nothing cut), `--json` exact, money as the API writes it."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import jsoncodec
from app.testing import Receiver
from tests.processes import KEY, child_env, declare, hub_process
from tests.test_billing import completion
from tests.test_einvoice import valid

pytestmark = pytest.mark.slow  # every test here starts billhook processes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


async def billhook(url: str, *args: str) -> tuple[int, str, str]:
    """`billhook <args>` against the hub at `url` (BILLHOOK_URL, the key from the environment),
    as an operator runs it, with no BILLHOOK_DATABASE_URL anywhere: exit code, output, and the
    output again when it failed (errors go to stderr, which shares the one pipe)."""
    env = child_env(BILLHOOK_URL=url, BILLHOOK_API_KEY=KEY, BILLHOOK_SECRET_KEY="")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    code = proc.returncode or 0
    return code, out.decode(), out.decode() if code else ""


async def test_invoices_and_events_over_http(database_url: str):
    async with hub_process(database_url) as hub:
        assert hub.url is not None
        headers = {"authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=hub.url, headers=headers) as api:
            seller = (FIXTURES / "seller.example.json").read_bytes()
            assert (await api.put("/v1/seller", content=seller)).status_code == 200
            body = completion(
                items=[
                    {
                        "productID": "P",
                        "description": "Trip",
                        "quantity": 1,
                        "grossUnitPrice": Decimal("11.90"),
                        "vatPercent": 19,
                    }
                ]
            )
            answer = await api.post("/v1/usage-completions", content=jsoncodec.dumps(body))
            assert answer.status_code == 202, answer.text
        code, out, err = await billhook(hub.url, "invoices", "finalize")
        assert code == 0, err
        header, row = out.splitlines()[:2]
        assert header.split("\t")[:4] == ["number", "customer", "contract", "gross"]
        number, customer, _, gross, net = row.split("\t")[:5]
        assert (customer, gross, net) == ("C-1", "11.90 EUR", "10.00")  # exact, not 10.0
        code, out, _ = await billhook(hub.url, "invoices", "list", "--json")
        [listed] = json.loads(out, parse_float=Decimal)
        assert listed["number"] == number and str(listed["totalNetAmount"]) == "10.00"
        code, out, _ = await billhook(hub.url, "invoices", "show", number)
        assert '"totalNetAmount": 10.00' in out and '"totalGrossAmount": 11.90' in out
        code, xml, _ = await billhook(hub.url, "invoices", "show", number, "--xml")
        assert code == 0
        code, out, err = await billhook(hub.url, "invoices", "show", "INV-2026-000999")
        assert code == 1 and "404" in err and "no invoice" in err
        code, out, _ = await billhook(hub.url, "events", "--json", "--limit", "10")
        types = {e["type"] for e in json.loads(out)}
        assert types == {"subscriptions/billingInformationAvailable", "invoices/invoiceFinalized"}
    # Last: Saxon, loaded in this process by the Schematron check, stops the event loop from
    # noticing that later child processes exit.
    valid(xml.encode())


async def test_endpoints_replay_and_cancel_pending_over_http(database_url: str):
    async with hub_process(database_url) as hub:
        assert hub.url is not None
        long_url = "http://127.0.0.1:9/" + "a-very-long-path/" * 12  # wider than any terminal
        headers = {"authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=hub.url, headers=headers) as api:
            endpoint = (await api.post("/v1/endpoints", json={"url": long_url})).json()
            patch = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"status": "disabled"})
            assert patch.status_code == 200
            await declare(api)
            for n in range(3):
                await api.post("/v1/events", json={"type": "t", "parameters": {"n": n}})
        code, out, err = await billhook(hub.url, "endpoints")
        assert code == 0, err
        [row] = out.splitlines()[1:]
        assert row.split("\t")[:3] == [endpoint["id"], long_url, "disabled"]  # never cut
        assert row.split("\t")[4:] == ["3", "3"]  # pending, of which held (disabled)
        code, out, _ = await billhook(
            hub.url, "replay", "--endpoint", endpoint["id"], "--since", "2026-01-01", "--dry-run"
        )
        assert code == 0 and out.splitlines() == ["matched", "3"]  # held ones count as missed
        code, out, _ = await billhook(hub.url, "cancel-pending", endpoint["id"], "--json")
        assert json.loads(out) == {"cancelled": 3}
        code, _, err = await billhook(hub.url, "replay-cancel", "rp_nope")
        assert code == 1 and "404" in err
    code, _, err = await billhook("http://127.0.0.1:9", "events")
    assert code == 1 and "cannot reach the hub" in err


async def test_a_replay_over_http_is_followed_to_its_end_with_the_local_progress_bar(
    database_url: str,
):
    """`billhook replay --url …` watches the way `--database` does: the bar (rendered once when
    piped) up to every event, then the final line; --json prints only the final state."""
    received: list[str] = []

    async def receiver(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        received.append(message.get("body", b"").decode())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with Receiver(receiver, "/hook") as server, hub_process(database_url) as hub:
        assert hub.url is not None
        headers = {"authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=hub.url, headers=headers) as api:
            endpoint = (await api.post("/v1/endpoints", json={"url": server.url})).json()
            await declare(api)
            for n in range(3):
                await api.post("/v1/events", json={"type": "t", "parameters": {"n": n}})
        args = ("replay", "--endpoint", endpoint["id"], "--since", "2026-01-01", "--status", "all")
        code, out, err = await billhook(hub.url, *args)
        assert code == 0, err
        assert re.search(r"replaying .* 3/3 ", out), out
        assert re.search(r"replay rp_\w+ done: 3 delivered, 0 failed, 0 pending$", out.strip())
        code, out, err = await billhook(hub.url, *args, "--json")
        assert code == 0, err
        final = json.loads(out)
        assert (final["status"], final["succeeded"], final["matched"]) == ("done", 3, 3)
    assert len(received) >= 9  # three first deliveries and two replays of three


async def test_a_command_over_http_without_a_key_says_how_to_give_one():
    """It used to try the hub and fail with "cannot reach the hub" (or a 401)."""
    env = child_env(BILLHOOK_URL="http://127.0.0.1:9", BILLHOOK_API_KEY="")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "events", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert out.decode().strip().splitlines() == [
        "no API key: set BILLHOOK_API_KEY or pass --key (or --database to act on the hub's "
        "database directly)"
    ]
