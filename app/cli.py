"""The `billhook` command: serve, worker, migrate, and the operator commands."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer

from app import jsoncodec, key_commands, logs, operator, remote, serving
from app import listen as listening
from app.clock import SystemClock, from_datetime
from app.config import ConfigError, Settings
from app.hub import Hub
from app.invoicing.service import Filters
from app.main import create_app
from app.replays import Request
from app.sealing import Sealer, SealError, new_key
from app.store import Store, StoreMissing, StoreUnavailable, StoreUnusable, open_store
from app.tenants import DEFAULT_TENANT_ID, Tenancy

cli = typer.Typer(
    help="billhook: webhook notification hub for usage-based billing.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(None, **overrides)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _logging(settings: Settings, role: str) -> None:
    logs.configure(role, settings.log_format)


@cli.command()
def serve(
    show_key: Annotated[
        bool, Opt("--show-key", help="also print the API key (make run does, for a newcomer)")
    ] = False,
) -> None:
    """Run the HTTP API and (unless BILLHOOK_WORKER=off) the delivery worker in one process."""
    _serve(_settings(), show_key, "serve")


@cli.command()
def api() -> None:
    """Run only the HTTP API (the role of an API process beside separate workers)."""
    _serve(_settings(run_worker=False, run_ingest=False), show_key=False, role="api")


def _serve(settings: Settings, show_key: bool, role: str) -> None:
    _logging(settings, role if settings.run_api else "worker")
    if not settings.run_api and not settings.run_worker:
        typer.echo(
            "configuration error: BILLHOOK_API and BILLHOOK_WORKER are both off: nothing to run",
            err=True,
        )
        raise typer.Exit(2)
    if not settings.run_api:
        _run_worker(settings)
        return
    sock = _listen(settings)
    _ready(settings, sock)
    port = sock.getsockname()[1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    typer.echo(f"billhook serving on http://{host}:{port}", err=True)
    typer.echo(f"  console: http://{host}:{port}/console/ (sign in with an API key)", err=True)
    if show_key and settings.api_key:
        typer.echo(f"  API key: {settings.api_key}", err=True)
        typer.echo(f"  try:     export BILLHOOK_API_KEY={settings.api_key}", err=True)
    _freeze_startup_objects()
    app = create_app(settings)
    serving.run(app, sock, settings)
    if getattr(app.state, "failure", None):
        raise typer.Exit(1)  # the worker died: said in the log


def _listen(settings: Settings) -> socket.socket:
    """The listening socket, bound before anything is printed; a failure is one line."""
    try:
        return serving.listen(settings.host, settings.port)
    except OSError as exc:
        typer.echo(f"cannot serve: {serving.explain(exc, settings.host, settings.port)}", err=True)
        raise typer.Exit(2) from exc


@cli.command()
def worker() -> None:
    """Run only the delivery worker (scale it apart from the API)."""
    settings = _settings(run_api=False, run_ingest=False)
    _logging(settings, "worker")
    _run_worker(settings)


@cli.command()
def ingest() -> None:
    """Run only queue ingest: consume the BILLHOOK_INGEST sources (docs/configuration.md)."""
    settings = _settings(run_api=False, run_worker=False)
    _logging(settings, "ingest")
    if not settings.ingest:
        typer.echo("configuration error: BILLHOOK_INGEST names no source: nothing to run", err=True)
        raise typer.Exit(2)
    _run_worker(settings)


def _needs_key(settings: Settings) -> None:
    try:
        settings.require_secret_key()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _ready(settings: Settings, sock: socket.socket | None = None) -> None:
    """Before anything says it runs: the key is set, the database opens and is migrated,
    every stored secret opens with the key, and BILLHOOK_API_KEY is one of the tenant's keys.
    Any of those failing is one line, exit 2."""
    _needs_key(settings)

    async def main() -> None:
        store = await open_store(
            settings.database_url,
            migrate_now_ms=SystemClock().now_ms(),
            pool_size=1,
            sealer=Sealer(settings.secret_key),
        )
        try:
            await store.endpoints.reseal()
            # its key works in every process before this one says it serves
            await Tenancy(store, SystemClock(), settings.admin_token).bootstrap(settings.api_key)
            for source in settings.ingest if settings.run_ingest else ():
                known = source.tenant == DEFAULT_TENANT_ID  # made at start if missing
                if not known and await store.tenants.get(source.tenant) is None:
                    raise StoreUnusable(
                        f"BILLHOOK_INGEST: {source.name}: no tenant {source.tenant!r} "
                        "(tenant= takes a tenant id)"
                    )
        finally:
            await store.close()

    try:
        _run(main())
    except (StoreMissing, StoreUnusable, StoreUnavailable, SealError) as exc:
        if sock is not None:
            sock.close()
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(2) from exc


def _run_worker(settings: Settings) -> None:
    _ready(settings)

    async def main() -> None:
        hub = await Hub.start(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, hub.stop_background)
        roles = ["worker"] if settings.run_worker else []
        roles += (
            [f"ingest from {s.name} ({s.where})" for s in hub.ingest.sources] if hub.ingest else []
        )
        typer.echo(f"billhook running: {', '.join(roles)}", err=True)
        try:
            await hub.run_background()
        except Exception as exc:
            logging.getLogger("billhook").critical(
                f"the background loops stopped ({type(exc).__name__}: {exc}): the process "
                "exits to be restarted"
            )
            raise typer.Exit(1) from exc
        finally:
            await hub.close()

    _freeze_startup_objects()
    _run(main())


@cli.command("secret-key")
def secret_key() -> None:
    """Print a new BILLHOOK_SECRET_KEY (256 random bits): the key endpoint secrets are sealed
    with at rest. To rotate, set BILLHOOK_SECRET_KEY=new,old and restart every process; drop
    the old key once all have restarted (docs/deploy.md)."""
    typer.echo(new_key())


@cli.command()
def migrate() -> None:
    """Apply pending schema migrations and exit."""
    settings = _settings()

    async def main() -> None:
        store = await open_store(settings.database_url)
        try:
            applied = await store.migrate(SystemClock().now_ms())
        finally:
            await store.close()
        typer.echo(f"migrations applied: {applied or 'none (up to date)'}")

    _run(main())


def _with_store(database: str | None, action: Callable[[Store], Coroutine[Any, Any, None]]) -> None:
    """Run an operator action on the hub's existing database (never a new, empty one)."""
    settings = _settings(**_database(database))
    _needs_key(settings)

    async def main() -> None:
        opening = open_store(
            settings.database_url,
            migrate_now_ms=SystemClock().now_ms(),
            create=False,
            sealer=Sealer(settings.secret_key),
        )
        store = await _existing(opening, settings)
        try:
            await action(store)
        finally:
            await store.close()

    _run(main())


def _with_hub(database: str | None, action: Callable[[Hub], Coroutine[Any, Any, None]]) -> None:
    """The hub's services on its existing database, without serving or delivering: what they
    write (an invoice's event, say) is sent by the running hub's worker."""
    settings = _settings(run_worker=False, **_database(database))
    _needs_key(settings)

    async def main() -> None:
        hub = await _existing(Hub.start(settings, create_store=False), settings)
        try:
            await action(hub)
        finally:
            await hub.close()

    _run(main())


T = TypeVar("T")


async def _existing(opening: Awaitable[T], settings: Settings) -> T:
    try:
        return await opening
    except StoreMissing as exc:
        typer.echo(
            f"{exc}: point BILLHOOK_DATABASE_URL (or --database) at the database the hub "
            f"serves (now {settings.database_url})",
            err=True,
        )
        raise typer.Exit(2) from exc


def _database(database: str | None) -> dict[str, Any]:
    return {} if database is None else {"database_url": database}


Database = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="the hub's database, e.g. sqlite:///./data/billhook.db (default: "
        "BILLHOOK_DATABASE_URL)",
    ),
]


def _when(option: str, raw: str) -> int:
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(
            "an RFC 3339 time or a date, e.g. 2026-11-01", param_hint=option
        ) from exc
    return from_datetime(moment)


Opt = typer.Option


HubUrl = Annotated[
    str,
    Opt("--url", envvar="BILLHOOK_URL", help="the hub's URL (BILLHOOK_URL)"),
]
Key = Annotated[
    str | None,
    Opt("--key", envvar="BILLHOOK_API_KEY", help="a tenant API key (BILLHOOK_API_KEY)"),
]
LOCAL_HUB = "http://127.0.0.1:8080"
Json = Annotated[bool, Opt("--json", help="print the answer as JSON (money exact)")]


def _over(url: str, key: str | None, action: Callable[[Any], Coroutine[Any, Any, None]]) -> None:
    """Run an operator action against the hub's HTTP API: with a key, or not at all."""
    if not key:
        typer.echo(
            "no API key: set BILLHOOK_API_KEY or pass --key (or --database to act on the "
            "hub's database directly)",
            err=True,
        )
        raise typer.Exit(1)

    async def main() -> None:
        async with listening.hub_client(url, key) as api:
            await action(api)

    _remote(main())


@cli.command()
def replay(
    endpoint: Annotated[str, Opt("--endpoint", help="ep_… to send to")],
    since: Annotated[str, Opt("--since", help="events from this time or date")],
    until: Annotated[str | None, Opt("--until", help="events before this (default: now)")] = None,
    status: Annotated[str, Opt("--status", help="failed: what never arrived; all")] = "failed",
    event_type: Annotated[list[str] | None, Opt("--event-type", help="repeatable")] = None,
    rate: Annotated[int | None, Opt("--rate", help="events per second (default 250)")] = None,
    dry_run: Annotated[bool, Opt("--dry-run", help="only count what would be sent")] = False,
    watch: Annotated[bool, Opt("--watch/--no-watch", help="follow it to the end")] = True,
    url: HubUrl = LOCAL_HUB,
    key: Key = None,
    as_json: Json = False,
    database: Database = None,
) -> None:
    """Re-send what an endpoint missed (or backfill a new one), watching the progress."""
    if status not in ("failed", "all"):
        raise typer.BadParameter("failed or all", param_hint="--status")
    if database is None:
        body = {
            "endpoint_id": endpoint,
            "since": since,
            "until": until,
            "status": status,
            "event_types": event_type,
            "dry_run": dry_run,
            "rate_per_s": rate,
        }
        _over(url, key, lambda api: remote.replay(api, body, watch, as_json))
        return
    request = Request(
        endpoint_id=endpoint,
        since=_when("--since", since),
        until=_when("--until", until) if until else None,
        only_failed=status == "failed",
        event_types=tuple(event_type) if event_type else None,
        rate_per_s=rate,
    )
    _with_store(database, lambda store: operator.start_replay(store, request, dry_run, watch))


@cli.command("replay-cancel")
def replay_cancel(
    replay_id: Annotated[str, typer.Argument(help="rp_…")],
    url: HubUrl = LOCAL_HUB,
    key: Key = None,
    as_json: Json = False,
    database: Database = None,
) -> None:
    """Cancel a running replay (what it enqueued and is pending is cancelled too)."""
    if database is None:
        _over(url, key, lambda api: remote.cancel_replay(api, replay_id, as_json))
        return
    _with_store(database, lambda store: operator.cancel_replay(store, replay_id))


@cli.command("cancel-pending")
def cancel_pending(
    endpoint: Annotated[str, typer.Argument(help="ep_…")],
    url: HubUrl = LOCAL_HUB,
    key: Key = None,
    as_json: Json = False,
    database: Database = None,
) -> None:
    """Cancel an endpoint's pending deliveries (what a disabled endpoint kept, say) instead of
    sending them when it is enabled again."""
    if database is None:
        _over(url, key, lambda api: remote.cancel_pending(api, endpoint, as_json))
        return
    _with_store(database, lambda store: operator.cancel_pending(store, endpoint))


@cli.command()
def events(
    tenant: Annotated[str, Opt("--tenant", help="with --database: name or tn_… id")] = "default",
    event_type: Annotated[str | None, Opt("--type")] = None,
    limit: Annotated[int, Opt("--limit", min=1, max=500)] = 20,
    url: HubUrl = LOCAL_HUB,
    key: Key = None,
    as_json: Json = False,
    database: Database = None,
) -> None:
    """The latest events."""
    if database is None:
        _over(url, key, lambda api: remote.list_events(api, event_type, limit, as_json))
        return
    _with_store(
        database, lambda store: operator.list_events(store, tenant, event_type, limit, as_json)
    )


@cli.command()
def endpoints(
    tenant: Annotated[str, Opt("--tenant", help="with --database: name or tn_… id")] = "default",
    url: HubUrl = LOCAL_HUB,
    key: Key = None,
    as_json: Json = False,
    database: Database = None,
) -> None:
    """The endpoints, their health and backlog."""
    if database is None:
        _over(url, key, lambda api: remote.list_endpoints(api, as_json))
        return
    _with_store(database, lambda store: operator.list_endpoints(store, tenant, as_json))


@cli.command()
def listen(
    url: HubUrl = LOCAL_HUB,
    key: Key = None,
    types: Annotated[
        list[str] | None, Opt("--types", help="event types to receive (repeatable; default all)")
    ] = None,
    forward_to: Annotated[
        str | None, Opt("--forward-to", help="also POST each event, with its headers, here")
    ] = None,
    port: Annotated[int, Opt("--port", help="local port (default: a free one)")] = 0,
    lease: Annotated[
        int,
        Opt(
            "--lease",
            min=10,
            max=3600,
            help="seconds the hub keeps the endpoint if this process dies without a word",
        ),
    ] = listening.LEASE_S,
) -> None:
    """Receive real signed events here: a temporary endpoint on the hub points at this
    machine; each delivery is verified and printed; the endpoint goes when this stops."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: its terminal closed
            loop.add_signal_handler(sig, stop.set)
        async with listening.hub_client(url, key) as api:
            await listening.listen(api, _say, stop, types, forward_to, port, lease)

    _remote(main())


@cli.command()
def trigger(
    event_type: Annotated[
        str, typer.Argument(help="e.g. subscriptions/billingInformationAvailable")
    ],
    data: Annotated[
        typer.FileBinaryRead | None,
        Opt("--data", help="a JSON file of the parameters (default: the catalog's example)"),
    ] = None,
    url: HubUrl = LOCAL_HUB,
    key: Key = None,
) -> None:
    """Publish an event of a type (the catalog's example, or --data) so listeners see it."""
    parameters = None if data is None else jsoncodec.loads(data.read())

    async def main() -> None:
        async with listening.hub_client(url, key) as api:
            answer = await listening.trigger(api, event_type, parameters)
        typer.echo(f"published {answer['id']} ({event_type}) to {answer['deliveries']} endpoint(s)")

    _remote(main())


def _say(line: str) -> None:
    typer.echo(line)


def _remote(coro: Coroutine[Any, Any, None]) -> None:
    """A command that talks to a hub over HTTP: its refusals are one line and exit 1."""
    try:
        _run(coro)
    except listening.HubUnreachable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


Tenant = Annotated[str, Opt("--tenant", help="name or tn_… id")]
keys = typer.Typer(
    help="API keys from the database: list, add (or rotate), revoke.", no_args_is_help=True
)
cli.add_typer(keys, name="keys")


@keys.command("list")
def keys_list(tenant: Tenant = "default", as_json: Json = False, database: Database = None) -> None:
    """A tenant's keys: name, source, created, last used, revoked (never the keys)."""
    _with_store(database, lambda store: key_commands.list_keys(store, tenant, as_json))


@keys.command("add")
def keys_add(
    name: Annotated[str, Opt("--name", help="what the key is for")],
    tenant: Tenant = "default",
    replaces: Annotated[str | None, Opt("--replaces", help="rotate this key_… id")] = None,
    overlap: Annotated[int, Opt("--overlap", min=0, help="seconds the old key still works")] = 0,
    database: Database = None,
) -> None:
    """Add a key (printed once), or rotate one with --replaces and an --overlap window."""
    action = key_commands.add_key
    _with_store(database, lambda store: action(store, tenant, name, replaces, overlap))


@keys.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="key_… id")],
    tenant: Tenant = "default",
    database: Database = None,
) -> None:
    """Revoke a key now: every process refuses it within five seconds."""
    _with_store(database, lambda store: key_commands.revoke_key(store, tenant, key_id))


invoices = typer.Typer(help="Finalized invoices: finalize, list, show.", no_args_is_help=True)
cli.add_typer(invoices, name="invoices")


@invoices.command("finalize")
def invoices_finalize(
    tenant: Tenant = "default",
    customer: Annotated[str | None, Opt("--customer", help="customerNumber")] = None,
    contract: Annotated[str | None, Opt("--contract", help="externalContractId")] = None,
    up_to: Annotated[str | None, Opt("--up-to", help="billing information up to then")] = None,
    url: HubUrl = LOCAL_HUB,
    key: Key = None,
    as_json: Json = False,
    database: Database = None,
) -> None:
    """Finalize open billing information into invoices (one per customer, contract, currency)."""
    if database is None:
        body = {"customerNumber": customer, "externalContractId": contract, "up_to": up_to}
        wanted = {k: v for k, v in body.items() if v is not None}
        _over(url, key, lambda api: remote.finalize(api, wanted, as_json))
        return
    filters = Filters(customer, contract, _when("--up-to", up_to) if up_to else None)
    _with_hub(database, lambda hub: operator.finalize_invoices(hub, tenant, filters, as_json))


@invoices.command("list")
def invoices_list(
    tenant: Tenant = "default",
    customer: Annotated[str | None, Opt("--customer", help="customerNumber")] = None,
    status: Annotated[
        str | None, Opt("--status", help="finalized|partially_credited|credited")
    ] = None,
    limit: Annotated[int, Opt("--limit", min=1, max=500)] = 20,
    url: HubUrl = LOCAL_HUB,
    key: Key = None,
    as_json: Json = False,
    database: Database = None,
) -> None:
    """The latest invoices."""
    if database is None:
        params = {"customerNumber": customer, "status": status, "limit": limit}
        wanted = {k: v for k, v in params.items() if v is not None}
        _over(url, key, lambda api: remote.list_invoices(api, wanted, as_json))
        return
    _with_hub(
        database,
        lambda hub: operator.list_invoices(hub, tenant, customer, status, limit, as_json),
    )


@invoices.command("show")
def invoices_show(
    number: Annotated[str, typer.Argument(help="INV-…")],
    tenant: Tenant = "default",
    xml: Annotated[bool, Opt("--xml", help="the EN 16931 e-invoice instead")] = False,
    url: HubUrl = LOCAL_HUB,
    key: Key = None,
    database: Database = None,
) -> None:
    """One invoice as finalized, as JSON (or its e-invoice XML)."""
    if database is None:
        _over(url, key, lambda api: remote.show_invoice(api, number, xml))
        return
    _with_hub(database, lambda hub: operator.show_invoice(hub, tenant, number, xml))


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it, except on Windows
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def _freeze_startup_objects() -> None:
    """Move everything imported so far out of the collector's sight: a full collection then
    scans only what the running hub allocates, so its pauses stay short. A young collection
    every 10,000 allocations rather than 700: a request's objects are freed by reference
    counting, and a bulk request allocates thousands (measured: 7.7 µs of collection per
    event accepted in batches at the default, 0.4 µs with this)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def main() -> None:
    sys.exit(cli())
