"""Request/response plumbing shared by the resource modules: JSON, limits, auth, pages."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from app import jsoncodec
from app.errors import (
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from app.hub import Hub
from app.inputs import decode, parse

MAX_BODY_BYTES = 256 * 1024
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return jsoncodec.dumps(content)


def hub(request: Request) -> Hub:
    found: Hub = request.app.state.hub
    return found


def one_header(values: Sequence[str], name: str = "Authorization") -> str | None:
    """Two Authorization (or Content-Type) headers are ambiguous — proxies and frameworks pick
    different ones — so they are refused on every route alike, hot or not."""
    if len(values) > 1:
        raise BadRequest(f"send one {name} header, not several")
    return values[0] if values else None


async def tenant(request: Request) -> str:
    authorization = one_header(request.headers.getlist("authorization"))
    return await hub(request).tenancy.tenant_for(authorization)


def admin(request: Request) -> None:
    authorization = one_header(request.headers.getlist("authorization"))
    hub(request).tenancy.require_admin(authorization)


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The body as JSON (numbers with fractions as Decimal), refusing more than `limit` bytes."""
    headers = request.headers
    content_type = one_header(headers.getlist("content-type"), "Content-Type")
    return await decode_json(content_type, headers.get("content-length"), request.stream(), limit)


async def decode_json(
    content_type: str | None,
    content_length: str | None,
    chunks: AsyncIterable[bytes],
    limit: int = MAX_BODY_BYTES,
) -> Any:
    """Shared by Starlette routes and the plain-ASGI hot routes (app/api/hot.py)."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaType(f"send content-type: application/json, not {kind}")
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PayloadTooLarge(f"body is {content_length} bytes; the limit is {limit}")
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return decode(b"".join(parts), limit)


async def body(request: Request, model: type[M]) -> M:
    return parse(model, await read_json(request))


def query_int(request: Request, name: str, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high], or None when absent (422 otherwise).
    ASCII digits only: str.isdigit() also takes '²', which int() then refuses."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18 and low <= int(raw) <= high):
        raise ValidationFailed.field(name, f"must be an integer from {low} to {high}")
    return int(raw)


def query_text(request: Request, name: str, max_length: int = 255) -> str | None:
    """A text query parameter of at most `max_length` characters, or None (422 otherwise)."""
    raw = request.query_params.get(name)
    if raw is not None and len(raw) > max_length:
        raise ValidationFailed.field(name, f"must be at most {max_length} characters")
    return raw


def page(request: Request) -> tuple[str | None, int]:
    limit = query_int(request, "limit", 1, 500)
    return query_text(request, "cursor", 200) or None, 50 if limit is None else limit


def paginated(
    items: Sequence[T], limit: int, out: Callable[[T], Any], key: Callable[[T], str]
) -> JSON:
    """Stores return limit + 1 rows; the extra one only says that there is a next page."""
    shown = items[:limit]
    more = len(items) > limit
    return JSON({"data": [out(i) for i in shown], "next_cursor": key(shown[-1]) if more else None})


def path_id(request: Request, name: str = "id") -> str:
    value: str = request.path_params[name]
    return value
