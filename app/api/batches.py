"""Bulk ingest: POST /v1/events/batch and POST /v1/usage-completions/batch take up to 1,000
items in one request. Each item is validated as its single route validates it, is idempotent
the same way (an event's `id`, a completion's `transactionId`) and gets the single route's
answer at its index; the accepted ones are written in one transaction, durable before the
answer (app/intake.py, which queue ingest shares). One round trip and one commit serve them
all.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.http import JSON, hub, read_json, tenant
from app.api.openapi import documented
from app.errors import ApiError
from app.inputs import parse
from app.intake import Item, Outcome
from app.models import BatchIn, BatchOut

BATCH_BODY_BYTES = 4 * 1024 * 1024  # 1,000 items of a few KiB


def _result(index: int, outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, ApiError):
        return {"index": index, "status": outcome.status, **outcome.body()}
    return {"index": index, "status": outcome[0], "result": outcome[1]}


async def _taken(request: Request, kind: str) -> Response:
    tenant_id = await tenant(request)
    items = parse(BatchIn, await read_json(request, BATCH_BODY_BYTES)).items
    outcomes = await hub(request).intake.take(kind, tenant_id, [Item(i) for i in items])
    return JSON({"results": [_result(i, o) for i, o in enumerate(outcomes)]})


@documented(
    "Publish up to 1,000 events at once: each item as POST /v1/events takes it (idempotent by "
    "its id), each with its own result (202, 200 for a repeat, 409, 422) at its index; all "
    "accepted items are committed in one transaction before the answer",
    request=BatchIn,
    response=BatchOut,
)
async def events_batch(request: Request) -> Response:
    return await _taken(request, "events")


@documented(
    "Record up to 1,000 usage completions at once: each item as POST /v1/usage-completions "
    "takes it (idempotent by transactionId), each with its own result at its index; all "
    "accepted items are committed in one transaction before the answer",
    request=BatchIn,
    response=BatchOut,
)
async def usage_completions_batch(request: Request) -> Response:
    return await _taken(request, "usage_completions")


routes = [
    Route("/v1/events/batch", events_batch, methods=["POST"]),
    Route("/v1/usage-completions/batch", usage_completions_batch, methods=["POST"]),
]
