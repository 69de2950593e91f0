"""The operator commands over a hub's HTTP API (`--url`/BILLHOOK_URL and a tenant key), the
way a hub on PostgreSQL on another machine is run; app/operator.py is the same on a local
database (`--database`). Both print through app/output.py."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httpx

from app.listen import call
from app.output import (
    WATCH_EVERY_S,
    ReplayState,
    document,
    follow_replay,
    replay_ended,
    say,
    show,
    text,
)

EVENT_COLUMNS = ("id", "type", "created", "customer", "contract")
INVOICE_COLUMNS = ("number", "customer", "contract", "gross", "net", "credited", "created")


async def list_events(
    api: httpx.AsyncClient, event_type: str | None, limit: int, as_json: bool
) -> None:
    params: dict[str, Any] = {"limit": limit} | ({"type": event_type} if event_type else {})
    page = await call(api, "GET", "/v1/events", params=params)
    rows = [
        (
            e["id"],
            e["type"],
            e["created_at"],
            e["parameters"].get("customerNumber"),
            e["parameters"].get("externalContractId"),
        )
        for e in page["data"]
    ]
    show(EVENT_COLUMNS, rows, page["data"], as_json)


async def list_endpoints(api: httpx.AsyncClient, as_json: bool) -> None:
    page = await call(api, "GET", "/v1/endpoints", params={"limit": 500})
    rows, data = [], []
    for ep in page["data"]:
        health = await call(api, "GET", f"/v1/endpoints/{ep['id']}/health")
        data.append({**ep, "health": health})
        types = "all" if ep["event_types"] is None else ep["event_types"]
        rows.append(
            (ep["id"], ep["url"], ep["status"], types, health.get("pending"), health.get("held"))
        )
    show(("id", "url", "status", "event types", "pending", "held"), rows, data, as_json)


async def replay(api: httpx.AsyncClient, body: dict[str, Any], watch: bool, as_json: bool) -> None:
    """Started over HTTP, then followed with the local mode's progress bar (--json: the final
    state once, nothing else on stdout)."""
    started = await call(api, "POST", "/v1/replays", json=body)
    if body.get("dry_run"):
        show(("matched",), [(started["matched"],)], started, as_json)
        return
    path = f"/v1/replays/{started['id']}"
    if as_json:
        state = started
        while watch and state["status"] == "running":
            await asyncio.sleep(WATCH_EVERY_S)
            state = await call(api, "GET", path)
        show((), [], state, True)
        return
    say(
        f"replay {started['id']} started: {started['matched']} event(s) at up to "
        f"{started['rate_per_s']}/s"
    )

    async def poll() -> ReplayState:
        return _replay_state(await call(api, "GET", path))

    replay_ended(await follow_replay(poll) if watch else _replay_state(started))


def _replay_state(found: dict[str, Any]) -> ReplayState:
    fields = ("id", "status", "matched", "enqueued", "succeeded", "failed", "pending")
    return ReplayState(*(found[f] for f in fields))


async def cancel_replay(api: httpx.AsyncClient, replay_id: str, as_json: bool) -> None:
    state = await call(api, "POST", f"/v1/replays/{replay_id}/cancel")
    show(("replay", "status"), [(state["id"], state["status"])], state, as_json)


async def cancel_pending(api: httpx.AsyncClient, endpoint_id: str, as_json: bool) -> None:
    answer = await call(api, "POST", f"/v1/endpoints/{endpoint_id}/cancel-pending")
    show(("endpoint", "cancelled"), [(endpoint_id, answer["cancelled"])], answer, as_json)


async def finalize(api: httpx.AsyncClient, body: dict[str, Any], as_json: bool) -> None:
    answer = await call(api, "POST", "/v1/invoices/finalize", json=body)
    if not answer["invoices"] and not as_json:
        say("nothing open to finalize")
        return
    show(INVOICE_COLUMNS, _invoice_rows(answer["invoices"]), answer, as_json)


async def list_invoices(api: httpx.AsyncClient, params: dict[str, Any], as_json: bool) -> None:
    page = await call(api, "GET", "/v1/invoices", params=params)
    show(INVOICE_COLUMNS, _invoice_rows(page["data"]), page["data"], as_json)


async def show_invoice(api: httpx.AsyncClient, number: str, xml: bool) -> None:
    if xml:
        xml_bytes: bytes = await call(api, "GET", f"/v1/invoices/{number}/e-invoice", raw=True)
        sys.stdout.write(xml_bytes.decode())
        return
    document((await call(api, "GET", f"/v1/invoices/{number}"))["document"])


def _invoice_rows(invoices: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            i["number"],
            i["customerNumber"],
            i["externalContractId"],
            f"{text(i['totalGrossAmount'])} {i['currency']}",
            i["totalNetAmount"],
            i["creditedAmount"],
            i["created_at"],
        )
        for i in invoices
    ]
