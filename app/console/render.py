"""Rendering console pages: Jinja2 templates through Starlette's templating, the security
headers every page carries (no inline script, nothing from another origin), and the filters
the templates share (times, money as sent, pretty JSON)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from app import __version__, jsoncodec
from app.access import Session
from app.errors import ApiError
from app.money import plain

HERE = Path(__file__).parent
HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}
templates = Jinja2Templates(directory=HERE / "templates")


def _ms(moment: int | str | None) -> int | None:
    """Unix milliseconds, or an RFC 3339 time as the API's models write them."""
    if moment is None or isinstance(moment, int):
        return moment
    return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() * 1000)


def _when(moment: int | str | None) -> str:
    """Every time a page shows is written one way: never a raw RFC 3339 string."""
    ms = _ms(moment)
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _now(context: Any) -> int:
    now: int = context["request"].app.state.hub.clock.now_ms()
    return now


@pass_context
def _ago(context: Any, moment: int | str | None) -> str:
    """A past moment as its distance from now ("3 min ago")."""
    ms = _ms(moment)
    if ms is None:
        return "never"
    seconds = (_now(context) - ms) / 1000
    return "just now" if seconds < 1 else f"{_age(seconds)} ago"


@pass_context
def _due(context: Any, moment: int | str | None) -> str:
    """A coming moment as its distance from now ("in 40 s"; "now" once it has passed)."""
    ms = _ms(moment)
    if ms is None:
        return "—"
    seconds = (ms - _now(context)) / 1000
    return "now" if seconds < 1 else f"in {_age(seconds)}"


def _money(value: Any) -> str:
    return plain(value) if isinstance(value, Decimal) else str(value)


def _pretty(raw: bytes | dict[str, Any]) -> str:
    """JSON as sent, indented: numbers keep their digits (22.70 stays 22.70)."""
    value = jsoncodec.loads(raw) if isinstance(raw, bytes) else raw
    return jsoncodec.dumps(value, indent=True).decode()


def _state(endpoint: Any) -> str:
    """active, failing or disabled: one word for an endpoint's health."""
    return "disabled" if endpoint.status == "disabled" else str(endpoint.health)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _rate(value: float | None) -> str:
    """Digits a reader can use, never an exponent: 1234.5 → 1,234; 42.25 → 42.2; 2.5 → 2.5;
    0.0076 → 0.0076 (two significant digits); below 0.0001 → < 0.0001."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    if value < 0.0001:
        return "< 0.0001"
    if value < 0.01:
        return f"{value:.2g}"  # plain notation from 1e-4 up
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{2 if value < 10 else 1}f}".rstrip("0").rstrip(".")


def _http_status(code: int) -> str:
    """503 → "503 Service Unavailable": what an answer meant, not only its number."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _percent(share: float | None) -> str:
    """A success rate: 100 % only when nothing failed (99.96 % is shown 99.9 %, not 100.0 %)."""
    if share is None:
        return "—"
    if share >= 1:
        return "100 %"
    return f"{math.floor(share * 1000) / 10:.1f} %"


templates.env.filters.update(
    rate=_rate, when=_when, money=_money, pretty=_pretty, state=_state, age=_age, ago=_ago,
    due=_due, percent=_percent, http_status=_http_status,
)  # fmt: skip


def to(request: Request, name: str, **params: Any) -> URL:
    """A route's URL as a path: links and redirects stay right behind a proxy that changes the
    host or the scheme."""
    return URL(request.url_for(name, **params).path)


@pass_context
def _url_for(context: dict[str, Any], name: str, /, **params: Any) -> URL:
    return to(context["request"], name, **params)


def _older(request: Request, cursor: str) -> URL:
    """This page's path and query, with the keyset cursor of the next page."""
    here = URL(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return here.include_query_params(cursor=cursor)


templates.env.globals.update(version=__version__, url_for=_url_for, older=_older)


# What a page says after a change, by key: the redirect carries the key, never the words (a
# link cannot make the console say something it did not).
NOTICES = {
    "created": "Endpoint registered.",
    "saved": "Endpoint saved.",
    "enabled": "Endpoint enabled: its deliveries go out again.",
    "disabled": "Endpoint disabled: nothing more is sent to it until it is enabled.",
    "resent": "Sent again to {n} endpoint(s).",
    "finalized": "{n} invoice(s) finalized.",
    "settings_saved": "Settings saved.",
    "credited": "Credit note created.",
    "revoked": "Key revoked.",
}


def done(request: Request, notice: str, name: str, n: int | None = None, **params: Any) -> Response:
    """After a change: see the result (303), with what happened said once."""
    query = {"notice": notice} if n is None else {"notice": notice, "n": str(n)}
    return RedirectResponse(to(request, name, **params).include_query_params(**query), 303)


def _notice(request: Request) -> str | None:
    text = NOTICES.get(request.query_params.get("notice", ""))
    n = request.query_params.get("n", "")
    return None if text is None else text.format(n=int(n) if n.isdigit() else "")


def page(
    request: Request, session: Session | None, template: str, status: int = 200, **context: Any
) -> Response:
    context = {"session": session, "notice": _notice(request), "error": None, **context}
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(HEADERS)
    return response


Handler = Callable[[Request, Exception], Awaitable[Response]]


def console_aware(handlers: Mapping[Any, Handler]) -> dict[Any, Handler]:
    """The API's error handlers, except that under /console an error is a page, not JSON."""

    def wrap(api: Handler) -> Handler:
        async def handle(request: Request, exc: Exception) -> Response:
            if not request.url.path.startswith("/console"):
                return await api(request, exc)
            status = _status_of(exc)
            message = getattr(exc, "message", None) or getattr(exc, "detail", None)
            if status >= 500 and not isinstance(exc, ApiError):
                await api(request, exc)  # logged as the API logs it
                message = "Something went wrong on our side; it is logged."
            return page(request, None, "error.html", status, error=str(message))

        return handle

    return {kind: wrap(handler) for kind, handler in handlers.items()}


def _status_of(exc: Exception) -> int:
    for name in ("status", "status_code"):
        value = getattr(exc, name, None)
        if isinstance(value, int):
            return value
    return 500
