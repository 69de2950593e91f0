"""Signing in and out: a key (or the admin token) or a one-time link becomes a session cookie.
Before a session exists the sign-in forms carry a CSRF token paired with a short-lived cookie,
so no other site can sign a browser in under an account of its choosing."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.access import Grant
from app.console import session as sessions
from app.console.guard import admin_only, changing, current, form_of, form_text, hub_of
from app.console.render import page, to
from app.console.session import PRE_COOKIE, Session
from app.errors import NotFound, Unauthorized
from app.hub import Hub


def _pre_token(request: Request) -> str:
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


def _with_pre_token(request: Request, response: Response, token: str) -> Response:
    secure = request.url.scheme == "https"
    response.set_cookie(PRE_COOKIE, token, max_age=3600, path="/console", httponly=True,
                        samesite="strict", secure=secure)  # fmt: skip
    return response


async def sign_in_form(request: Request) -> Response:
    if await current(request) is not None:
        return RedirectResponse(to(request, "console:overview"), status_code=303)
    token = _pre_token(request)
    return _with_pre_token(request, page(request, None, "sign_in.html", csrf=token), token)


async def sign_in(request: Request) -> Response:
    form = await form_of(request)
    token = _pre_token(request)
    if not sessions.same_token(form.get("csrf"), request.cookies.get(PRE_COOKIE, "")):
        failed = page(request, None, "sign_in.html", 403, csrf=token,
                      error="The form expired: sign in again.")  # fmt: skip
        return _with_pre_token(request, failed, token)
    try:
        grant = await hub_of(request).access.sign_in(form_text(form, "key") or "")
    except Unauthorized:
        refused = page(request, None, "sign_in.html", 401, csrf=token,
                       error="This key is unknown or revoked.")  # fmt: skip
        return _with_pre_token(request, refused, token)
    return await _signed_in(request, grant)


async def link_form(request: Request) -> Response:
    """A link is used up by the button, not by opening it: a chat app's preview must not
    spend it."""
    token = _pre_token(request)
    response = page(request, None, "link.html", csrf=token, link=request.path_params["token"])
    return _with_pre_token(request, response, token)


async def use_link(request: Request) -> Response:
    form = await form_of(request)
    if not sessions.same_token(form.get("csrf"), request.cookies.get(PRE_COOKIE, "")):
        expired = "The form expired: open the link again."
        return page(request, None, "error.html", 403, error=expired)
    try:
        grant = await hub_of(request).access.use_link(request.path_params["token"])
    except Unauthorized as exc:
        return page(request, None, "error.html", 401, error=exc.message)
    return await _signed_in(request, grant)


async def _signed_in(request: Request, grant: Grant) -> Response:
    response = RedirectResponse(to(request, "console:overview"), status_code=303)
    hub = hub_of(request)
    sessions.write(
        response, request, await hub.access.secret(), sessions.new(grant, hub.clock.now_ms())
    )
    response.delete_cookie(PRE_COOKIE, path="/console")
    return response


async def sign_out(request: Request) -> Response:
    """Any role may sign out (with the session's CSRF token)."""
    found = await current(request)
    form = await form_of(request)
    response = RedirectResponse(to(request, "console:sign_in"), status_code=303)
    if found is not None and sessions.same_token(form.get("csrf"), found.csrf):
        sessions.clear(response)
    return response


@changing
@admin_only
async def switch_tenant(request: Request, hub: Hub, found: Session) -> Response:
    """The admin looks at one tenant at a time."""
    tenant_id = form_text(await request.form(), "tenant_id") or ""
    if await hub.tenancy.get(tenant_id) is None:
        raise NotFound(f"no tenant {tenant_id}")
    response = RedirectResponse(to(request, "console:overview"), status_code=303)
    switched = Session(found.grant, found.csrf, tenant_id, found.issued_at)
    sessions.write(response, request, await hub.access.secret(), switched)
    return response
