"""Records → response bodies shared by resource modules (shapes: AttemptOut, DeliveryOut)."""

from __future__ import annotations

from typing import Any

from app.clock import to_rfc3339
from app.records import Attempt, Delivery


def attempt_out(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "delivery_id": a.delivery_id,
        "attempt": a.attempt,
        "trigger": a.trigger,
        "started_at": to_rfc3339(a.started_at),
        "duration_ms": a.duration_ms,
        "status_code": a.status_code,
        "error": a.error,
        "response_body": a.response_body,
    }


def delivery_out(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "endpoint_id": d.endpoint_id,
        "status": d.status,
        "trigger": d.trigger,
        "attempts": d.attempts,
        "next_attempt_at": to_rfc3339(d.next_attempt_at),
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
    }
