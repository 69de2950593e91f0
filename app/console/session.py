"""The console's cookies: the session's token (HttpOnly, SameSite=Strict, Secure over HTTPS),
and, before a session exists, the sign-in form's CSRF token — both issued by the hub. What a
session may do is kept on the server (app/access.py), never in the cookie."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "billhook_console"
PRE_COOKIE = "billhook_console_csrf"  # the sign-in form's CSRF token, before a session exists
PATH = "/console"


def token(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


def write(response: Response, request: Request, value: str, max_age_s: int) -> None:
    _set(response, request, COOKIE, value, max_age_s)


def write_pre(response: Response, request: Request, value: str, max_age_s: int) -> None:
    _set(response, request, PRE_COOKIE, value, max_age_s)


def _set(response: Response, request: Request, name: str, value: str, max_age_s: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max(max_age_s, 0),
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",  # behind a proxy: see docs/deploy.md
    )


def clear(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH)


def same_token(sent: object, expected: str) -> bool:
    return isinstance(sent, str) and bool(expected) and hmac.compare_digest(sent, expected)
