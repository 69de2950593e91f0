"""Replays from the console: choose endpoint, window, status and types; see how many events
the dry run counts; confirm; watch progress (the page refreshes itself while it runs); cancel."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.access import Session
from app.console.event_pages import known_types
from app.console.guard import changing, form_text, viewing
from app.console.render import page, to
from app.hub import Hub
from app.inputs import parse
from app.models import ReplayCreate
from app.replays import Progress, request_from
from app.replays import Request as ReplayRequest

PAGE_SIZE = 20
ENDPOINTS_LISTED = 200  # to choose from, and to name the replays' endpoints


@dataclass(frozen=True, slots=True)
class Pace:
    """How far a replay is, how fast it goes and when it should end."""

    done: int
    percent: int
    per_s: float | None
    eta_s: int | None


def pace(progress: Progress, now_ms: int) -> Pace:
    replay = progress.replay
    done = progress.succeeded + progress.failed
    total = max(replay.matched, done + progress.pending)
    percent = 100 if total == 0 else min(100, done * 100 // total)
    elapsed_s = max((now_ms - replay.created_at) / 1000, 0.001)
    per_s = done / elapsed_s if done else None
    remaining = total - done
    eta = None if per_s is None or progress.status != "running" else int(remaining / per_s)
    return Pace(done, percent, per_s, eta)


@viewing
async def replays(request: Request, hub: Hub, found: Session) -> Response:
    cursor = request.query_params.get("cursor") or None
    items = await hub.replays.page(found.tenant, cursor, PAGE_SIZE + 1)
    now = hub.clock.now_ms()
    endpoints = await hub.endpoints.list(found.tenant, None, ENDPOINTS_LISTED)
    return page(
        request, found, "replays.html",
        rows=[(p, pace(p, now)) for p in items[:PAGE_SIZE]],
        next_cursor=items[PAGE_SIZE - 1].replay.id if len(items) > PAGE_SIZE else None,
        endpoints=endpoints, named={e.id: e for e in endpoints},
        types=await known_types(hub, found.tenant), values={"status": "failed"},
        chosen=request.query_params.get("endpoint_id"),
    )  # fmt: skip


@changing
async def preview(request: Request, hub: Hub, found: Session) -> Response:
    """The dry run: the count, and the same choices as hidden fields to confirm them."""
    form = await request.form()
    wanted = _request(form)
    matched = await hub.replays.count(found.tenant, wanted)
    endpoint = await hub.endpoints.get(found.tenant, wanted.endpoint_id)
    values = {k: v for k, v in form.items() if k not in ("csrf", "event_types")}
    return page(request, found, "replay_preview.html", matched=matched, endpoint=endpoint,
                values=values, request_types=form.getlist("event_types"))  # fmt: skip


@changing
async def start(request: Request, hub: Hub, found: Session) -> Response:
    started = await hub.replays.start(found.tenant, _request(await request.form()))
    url = to(request, "console:replay", id=started.id)
    return RedirectResponse(url, status_code=303)


@viewing
async def replay(request: Request, hub: Hub, found: Session) -> Response:
    progress = await hub.replays.progress(found.tenant, request.path_params["id"])
    endpoint = await hub.endpoints.get(found.tenant, progress.replay.endpoint_id)
    return page(request, found, "replay.html", progress=progress, endpoint=endpoint,
                pace=pace(progress, hub.clock.now_ms()))  # fmt: skip


@changing
async def cancel(request: Request, hub: Hub, found: Session) -> Response:
    cancelled = await hub.replays.cancel(found.tenant, request.path_params["id"])
    return RedirectResponse(to(request, "console:replay", id=cancelled.replay.id), 303)


def _request(form: FormData) -> ReplayRequest:
    """The form checked by the API's own model (same limits), then as the service takes it."""
    types = [str(t) for t in form.getlist("event_types") if str(t)]
    rate = form_text(form, "rate_per_s")
    spec = parse(ReplayCreate, {
        "endpoint_id": form_text(form, "endpoint_id") or "",
        "since": form_text(form, "since") or "",
        "until": form_text(form, "until"),
        "status": form_text(form, "status") or "failed",
        "event_types": types or None,
        "rate_per_s": int(rate) if rate and rate.isascii() and rate.isdigit() else rate,
    })  # fmt: skip
    return request_from(spec)
