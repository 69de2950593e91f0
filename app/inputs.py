"""Client input made into checked values, one way for the API, the console and queue ingest: a
body, a form or a message through the API's pydantic models, a moment in time from RFC 3339 or
a date."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app import jsoncodec
from app.clock import from_datetime
from app.errors import InvalidJson, PayloadTooLarge, ValidationFailed

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from exc


def decode(data: bytes, limit: int) -> Any:
    """A request body or a queue message as JSON (numbers with fractions as Decimal): 413 over
    `limit` bytes, 400 when it is not JSON, 422 past the codec's limits."""
    if len(data) > limit:
        raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
    try:
        return jsoncodec.loads(data)
    except jsoncodec.JsonLimit as exc:
        raise ValidationFailed.field("body", str(exc)) from exc
    except jsoncodec.JsonError as exc:
        raise InvalidJson(f"body is not valid JSON: {exc}") from exc


def parse_time(name: str, raw: str) -> int:
    """An RFC 3339 time or a date (midnight UTC) → unix milliseconds; 422 naming the field."""
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed.field(name, "must be an RFC 3339 time or a date") from exc
    return from_datetime(moment)
