"""Every console page goes through here: who the session is, and whether it may change things
(operators and the admin, with the form's CSRF token). A foreign id is a 404 exactly as in the
API, because the pages call the same services with the session's tenant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.access import Session
from app.console import session as sessions
from app.console.render import page, to
from app.errors import ApiError, PayloadTooLarge, ValidationFailed
from app.hub import Hub

Page = Callable[[Request, Hub, Session], Awaitable[Response]]
FORM_LIMIT = 64 * 1024  # a console form is a few hundred bytes; a credit note's, a few KiB


async def form_of(request: Request) -> FormData:
    """The posted form, refused before it is read when it announces more than FORM_LIMIT
    bytes (or announces nothing: a browser always sends Content-Length with a form)."""
    length = request.headers.get("content-length", "")
    if not (length.isascii() and length.isdigit()) or int(length) > FORM_LIMIT:
        raise PayloadTooLarge(f"a console form is at most {FORM_LIMIT} bytes")
    return await request.form()


def hub_of(request: Request) -> Hub:
    found: Hub = request.app.state.hub
    return found


async def current(request: Request) -> Session | None:
    return await hub_of(request).access.session(sessions.token(request))


def viewing(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page anyone signed in may see; the others are sent to sign in."""

    @wraps(handler)
    async def run(request: Request) -> Response:
        found = await current(request)
        if found is None:
            return RedirectResponse(to(request, "console:sign_in"), status_code=303)
        return await _handled(handler, request, found)

    return run


def changing(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A form that changes something: an operator's (or the admin's), with its CSRF token."""

    @wraps(handler)
    async def checked(request: Request, hub: Hub, found: Session) -> Response:
        form = await form_of(request)
        if not sessions.same_token(form.get("csrf"), found.csrf):
            return page(request, found, "error.html", 403, error="The form expired: reload it.")
        if not found.grant.can_change:
            return page(request, found, "error.html", 403,
                        error="A viewer can look but not change anything.")  # fmt: skip
        return await handler(request, hub, found)

    return viewing(checked)


def admin_only(handler: Page) -> Page:
    @wraps(handler)
    async def run(request: Request, hub: Hub, found: Session) -> Response:
        if not found.grant.is_admin:
            return page(request, found, "error.html", 403, error="Only the admin sees this.")
        return await handler(request, hub, found)

    return run


async def _handled(handler: Page, request: Request, found: Session) -> Response:
    try:
        return await handler(request, hub_of(request), found)
    except ApiError as exc:  # the services' own refusals, shown as they are
        details = "; ".join(str(d.get("msg", "")) for d in exc.details if isinstance(d, dict))
        return page(request, found, "error.html", exc.status, error=exc.message,
                    details=details)  # fmt: skip


def confirmed(form: Any, what: str) -> None:
    """A destructive action asks once, saying what will happen: its form carries a checkbox
    (the browser requires it; without script, so the hub checks it too)."""
    if form.get("confirm") != "yes":
        raise ValidationFailed.field("confirm", f"tick the box to confirm: {what}")


def form_text(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None
