"""The tenant's settings in the console: automatic finalization and free-form event types,
read and changed through the same service as `/v1/settings` (app/tenant_settings.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.access import Session
from app.console.guard import changing, viewing
from app.console.render import done, page
from app.hub import Hub

FIELDS = ("auto_finalize", "auto_finalize_drafts", "free_form_types")


@viewing
async def settings(request: Request, hub: Hub, found: Session) -> Response:
    service = hub.tenant_settings
    after_ms = service.finalize_after_ms
    return page(
        request, found, "settings.html", settings=await service.get(found.tenant),
        finalize_after_s=None if after_ms is None else after_ms // 1000,
    )  # fmt: skip


@changing
async def save(request: Request, hub: Hub, found: Session) -> Response:
    """The form shows every setting: a box left unticked is off."""
    form = await request.form()
    await hub.tenant_settings.change(found.tenant, **{f: form.get(f) == "on" for f in FIELDS})
    return done(request, "settings_saved", "console:settings")
