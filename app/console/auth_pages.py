"""Signing in and out: a key (or the admin token) or a one-time link becomes a session held on
the server. Before a session exists the sign-in forms carry a CSRF token the hub issued and
signed, paired with a short-lived cookie, so no other site can sign a browser in under an
account of its choosing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.access import PRE_TOKEN_S, Credential, Session
from app.console import session as sessions
from app.console.guard import admin_only, changing, current, form_of, form_text, hub_of
from app.console.render import page, to
from app.console.session import PRE_COOKIE
from app.errors import RateLimited, Unauthorized
from app.hub import Hub


def _with_pre_token(request: Request, template: str, status: int = 200, **values: str) -> Response:
    """A sign-in page with a fresh server-issued CSRF token, in the form and in a cookie."""
    token = hub_of(request).access.pre_token()
    response = page(request, None, template, status, csrf=token, **values)
    sessions.write_pre(response, request, token, PRE_TOKEN_S)
    return response


def _pre_token_sent(request: Request, sent: object) -> bool:
    """The form's token is one the hub issued, and the one this browser was given."""
    cookie = request.cookies.get(PRE_COOKIE, "")
    return sessions.same_token(sent, cookie) and hub_of(request).access.pre_token_valid(cookie)


async def sign_in_form(request: Request) -> Response:
    if await current(request) is not None:
        return RedirectResponse(to(request, "console:overview"), status_code=303)
    return _with_pre_token(request, "sign_in.html")


async def sign_in(request: Request) -> Response:
    form = await form_of(request)
    if not _pre_token_sent(request, form.get("csrf")):
        return _with_pre_token(request, "sign_in.html", 403,
                               error="The form expired: sign in again.")  # fmt: skip
    client = request.client.host if request.client else "unknown"
    try:
        credential = await hub_of(request).access.sign_in(form_text(form, "key") or "", client)
    except RateLimited as exc:
        refused = _with_pre_token(request, "sign_in.html", 429, error=exc.message)
        refused.headers["retry-after"] = str(exc.retry_after_s)
        return refused
    except Unauthorized:
        return _with_pre_token(request, "sign_in.html", 401,
                               error="This key is unknown or revoked.")  # fmt: skip
    return await _signed_in(request, credential)


async def link_form(request: Request) -> Response:
    """A link is used up by the button, not by opening it: a chat app's preview must not
    spend it."""
    return _with_pre_token(request, "link.html", link=request.path_params["token"])


async def use_link(request: Request) -> Response:
    form = await form_of(request)
    if not _pre_token_sent(request, form.get("csrf")):
        expired = "The form expired: open the link again."
        return page(request, None, "error.html", 403, error=expired)
    try:
        credential = await hub_of(request).access.use_link(request.path_params["token"])
    except Unauthorized as exc:
        return page(request, None, "error.html", 401, error=exc.message)
    return await _signed_in(request, credential)


async def _signed_in(request: Request, credential: Credential) -> Response:
    hub = hub_of(request)
    token, session = await hub.access.open_session(credential)
    response = RedirectResponse(to(request, "console:overview"), status_code=303)
    lasts_s = (session.expires_at - hub.clock.now_ms()) // 1000
    sessions.write(response, request, token, lasts_s)
    response.delete_cookie(PRE_COOKIE, path=sessions.PATH)
    return response


async def sign_out(request: Request) -> Response:
    """Any role may sign out (with the session's CSRF token): the session ends on the server,
    so a copy of the cookie is worth nothing after."""
    found = await current(request)
    form = await form_of(request)
    response = RedirectResponse(to(request, "console:sign_in"), status_code=303)
    token = sessions.token(request)
    if found is not None and token and sessions.same_token(form.get("csrf"), found.csrf):
        await hub_of(request).access.sign_out(token)
        sessions.clear(response)
    return response


@changing
@admin_only
async def switch_tenant(request: Request, hub: Hub, found: Session) -> Response:
    """The admin looks at one tenant at a time."""
    tenant_id = form_text(await request.form(), "tenant_id") or ""
    await hub.access.choose_tenant(found, tenant_id)
    return RedirectResponse(to(request, "console:overview"), status_code=303)
