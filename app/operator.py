"""What the operator commands do, on the store directly (the hub's worker does the sending).

`billhook replay` starts a replay job and watches it with a progress bar; `billhook events`
and `billhook endpoints` list what is there; `billhook cancel-pending` drops what an endpoint
kept while disabled. They need BILLHOOK_DATABASE_URL, not an API key:
they are for whoever runs the hub.
"""

from __future__ import annotations

import sys

from rich.console import Console

from app import jsoncodec
from app.clock import SystemClock, to_rfc3339
from app.errors import ApiError
from app.events import parameters_of
from app.hub import Hub
from app.invoicing import documents
from app.invoicing.service import Filters
from app.money import minor_units, plain, quantum
from app.output import ReplayState, follow_replay, replay_ended, show
from app.records import Document
from app.replays import ReplayService, Request
from app.store import Store

console = Console()


async def tenant_id(store: Store, tenant: str) -> str:
    found = await store.tenants.get(tenant) or await store.tenants.by_name(tenant)
    if found is None:
        raise SystemExit(f"no tenant {tenant!r}")
    return found.id


async def start_replay(store: Store, request: Request, dry_run: bool, watch: bool) -> None:
    endpoint = await store.endpoints.find(request.endpoint_id)
    if endpoint is None:
        raise SystemExit(f"no endpoint {request.endpoint_id}")
    service = ReplayService(store, SystemClock())
    if dry_run:
        matched = await service.count(endpoint.tenant_id, request)
        console.print(f"{matched} event(s) would be replayed to {endpoint.url}")
        return
    replay = await service.start(endpoint.tenant_id, request)
    console.print(
        f"replay [bold]{replay.id}[/] started: {replay.matched} event(s) "
        f"to {endpoint.url} at up to {replay.rate_per_s}/s"
    )
    if watch:
        await watch_replay(service, endpoint.tenant_id, replay.id)


async def watch_replay(service: ReplayService, tenant: str, replay_id: str) -> None:
    async def poll() -> ReplayState:
        p = await service.progress(tenant, replay_id)
        r = p.replay
        return ReplayState(r.id, p.status, r.matched, r.enqueued, p.succeeded, p.failed, p.pending)

    replay_ended(await follow_replay(poll))


async def cancel_replay(store: Store, replay_id: str) -> None:
    replay = await store.replays.find(replay_id)
    if replay is None:
        raise SystemExit(f"no replay {replay_id}")
    state = await ReplayService(store, SystemClock()).cancel(replay.tenant_id, replay_id)
    console.print(f"replay {replay_id} {state.status}")


async def cancel_pending(store: Store, endpoint_id: str) -> None:
    endpoint = await store.endpoints.find(endpoint_id)
    if endpoint is None:
        raise SystemExit(f"no endpoint {endpoint_id}")
    cancelled = await store.endpoints.cancel_pending(endpoint.id, SystemClock().now_ms())
    console.print(f"{cancelled} pending delivery(ies) to {endpoint.url} cancelled")


async def list_events(
    store: Store, tenant: str, event_type: str | None, limit: int, as_json: bool = False
) -> None:
    filters = {"type": event_type}
    events = await store.events.page(await tenant_id(store, tenant), filters, limit)
    data = [
        {
            "id": e.id,
            "type": e.type,
            "created_at": to_rfc3339(e.created_at),
            "parameters": parameters_of(e),
        }
        for e in events
    ]
    rows = [
        (e.id, e.type, to_rfc3339(e.created_at), e.customer_number, e.external_contract_id)
        for e in events
    ]
    show(("id", "type", "created", "customer", "contract"), rows, data, as_json)


async def list_endpoints(store: Store, tenant: str, as_json: bool = False) -> None:
    rows, data = [], []
    for ep in await store.endpoints.of_tenant(await tenant_id(store, tenant)):
        backlog = await store.endpoints.backlog(ep.id)
        status = "disabled" if ep.status == "disabled" else ep.health
        types = "all" if ep.event_types is None else list(ep.event_types)
        rows.append((ep.id, ep.url, status, types, backlog["pending"], backlog["held"]))
        data.append(
            {
                "id": ep.id,
                "url": ep.url,
                "status": status,
                "event_types": types,
                "pending": backlog["pending"],
                "held": backlog["held"],
            }
        )
    show(("id", "url", "status", "event types", "pending", "held"), rows, data, as_json)


async def finalize_invoices(hub: Hub, tenant: str, filters: Filters, as_json: bool = False) -> None:
    try:
        made = await hub.invoices.finalize(await tenant_id(hub.store, tenant), filters)
    except ApiError as exc:
        raise SystemExit(exc.message) from exc
    if not made and not as_json:
        console.print("nothing open to finalize")
        return
    _invoices(made, as_json)
    if not as_json:
        console.print(f"{len(made)} invoice(s) finalized; the running hub notifies the endpoints")


async def list_invoices(
    hub: Hub,
    tenant: str,
    customer: str | None,
    status: str | None,
    limit: int,
    as_json: bool = False,
) -> None:
    filters = {"customer_number": customer, "status": status}
    found = await hub.invoices.page(await tenant_id(hub.store, tenant), filters, None, limit)
    _invoices(found, as_json)


async def show_invoice(hub: Hub, tenant: str, number: str, xml: bool) -> None:
    try:
        doc = await hub.invoices.get(await tenant_id(hub.store, tenant), number)
        if xml:
            sys.stdout.write((await hub.invoices.e_invoice(doc.tenant_id, number)).decode())
            return
    except ApiError as exc:
        raise SystemExit(exc.message) from exc
    # Printed as stored (not through rich's JSON, which reads numbers as floats: 22.7).
    sys.stdout.write(jsoncodec.dumps(documents.load(doc.document), indent=True).decode() + "\n")


def _invoices(found: list[Document], as_json: bool) -> None:
    rows, data = [], []
    for d in found:
        parameters = documents.load(d.document)
        currency = parameters["invoice"]["currency"]
        credited = d.credited_minor * quantum(minor_units(currency))
        rows.append(
            (
                d.number,
                parameters["customerNumber"],
                parameters["externalContractId"],
                f"{plain(d.total_gross)} {currency}",
                d.total_net,
                credited,
                to_rfc3339(d.created_at),
            )
        )
        data.append(
            {
                "number": d.number,
                "totalGrossAmount": d.total_gross,
                "totalNetAmount": d.total_net,
                "creditedAmount": credited,
                "currency": currency,
                "document": parameters,
            }
        )
    show(
        ("number", "customer", "contract", "gross", "net", "credited", "created"),
        rows,
        data,
        as_json,
    )
