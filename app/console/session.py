"""Console sessions: a signed, HttpOnly, SameSite=Strict cookie holding the grant (tenant and
role), a CSRF token and when it was issued — never the key that was exchanged for it."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from app.access import Grant
from app.tenants import DEFAULT_TENANT_ID

COOKIE = "billhook_console"
PRE_COOKIE = "billhook_console_csrf"  # the sign-in form's CSRF token, before a session exists
MAX_AGE_S = 8 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    grant: Grant
    csrf: str
    tenant_id: str | None  # the admin's chosen tenant; a tenant session's own
    issued_at: int  # unix ms: the session ends MAX_AGE_S later, whatever it does meanwhile

    @property
    def tenant(self) -> str:
        """The tenant the pages show (the admin picks one; see /console/tenant)."""
        return self.tenant_id or self.grant.tenant_id or DEFAULT_TENANT_ID


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="billhook-console-session")


def read(request: Request, secret: str, now_ms: int) -> Session | None:
    """The session of a cookie signed with `secret` and issued less than MAX_AGE_S ago (by the
    hub's clock, so that expiry is testable), else None."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(secret).loads(raw, max_age=MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not 0 <= now_ms - data.get("i", -1) < MAX_AGE_S * 1000:
        return None
    return Session(Grant(data["t"], data["r"]), data["c"], data.get("s"), data["i"])


def write(response: Response, request: Request, secret: str, session: Session) -> None:
    data = {"t": session.grant.tenant_id, "r": session.grant.role, "c": session.csrf,
            "s": session.tenant_id, "i": session.issued_at}  # fmt: skip
    response.set_cookie(
        COOKIE,
        _serializer(secret).dumps(data),
        max_age=MAX_AGE_S,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def new(grant: Grant, now_ms: int) -> Session:
    return Session(grant, secrets.token_urlsafe(24), grant.tenant_id, now_ms)


def clear(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/console")


def same_token(sent: object, expected: str) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(sent, expected)
