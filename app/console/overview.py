"""The overview: what the tenant's deliveries did over the last hour and day, the queue, and
the endpoints that need attention first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.access import Session
from app.console import charts
from app.console.guard import viewing
from app.console.render import page
from app.events import QUEUE_CAP
from app.hub import Hub

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
SHOWN_ENDPOINTS = 100
BACKLOG_CAP = 1000  # pending deliveries a row reads at most


@viewing
async def overview(request: Request, hub: Hub, found: Session) -> Response:
    tenant = found.tenant
    windows = []
    for name, window in (("Last hour", HOUR_MS), ("Last day", DAY_MS)):
        activity = await hub.events.activity(tenant, window)
        windows.append({
            "name": name,
            "activity": activity,
            "attempts_chart": charts.attempts(activity, f"{name}: attempts per slice"),
            "latency_chart": charts.latency(activity, f"{name}: latency p50 and p99"),
        })  # fmt: skip
    pending, oldest = await hub.events.queue(tenant)
    troubled = await hub.endpoints.needing_attention(tenant, SHOWN_ENDPOINTS)
    endpoints = await hub.endpoints.list(tenant, None, SHOWN_ENDPOINTS + 1)
    seen = {e.id for e in troubled}
    shown = troubled + [e for e in endpoints[:SHOWN_ENDPOINTS] if e.id not in seen]
    rows = [(e, await hub.endpoints.glance(e, BACKLOG_CAP)) for e in shown[:SHOWN_ENDPOINTS]]
    return page(
        request, found, "overview.html",
        windows=windows, pending=pending, pending_capped=pending >= QUEUE_CAP,
        oldest_age_s=None if oldest is None else max(0, (hub.clock.now_ms() - oldest) // 1000),
        rows=rows, more_endpoints=len(endpoints) > SHOWN_ENDPOINTS,
    )  # fmt: skip
