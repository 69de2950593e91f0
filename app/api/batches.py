"""Bulk ingest: POST /v1/events/batch and POST /v1/usage-completions/batch take up to 1,000
items in one request. Each item is validated as its single route validates it, is idempotent
the same way (an event's `id`, a completion's `transactionId`) and gets the single route's
answer at its index; the accepted ones are written in one transaction, durable before the
answer. One round trip and one commit serve them all.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import schemas
from app.api.billing import answer as completion_answer
from app.api.events import accepted
from app.api.http import JSON, hub, read_json, tenant
from app.api.openapi import documented
from app.billing.models import UsageCompletion
from app.errors import ApiError
from app.events import Publication
from app.inputs import parse
from app.models import BatchIn, BatchOut, EventCreate

BATCH_BODY_BYTES = 4 * 1024 * 1024  # 1,000 items of a few KiB


def _result(index: int, outcome: tuple[int, Any] | ApiError) -> dict[str, Any]:
    if isinstance(outcome, ApiError):
        return {"index": index, "status": outcome.status, **outcome.body()}
    return {"index": index, "status": outcome[0], "result": outcome[1]}


async def _items(request: Request) -> tuple[str, list[Any]]:
    tenant_id = await tenant(request)
    return tenant_id, parse(BatchIn, await read_json(request, BATCH_BODY_BYTES)).items


@documented(
    "Publish up to 1,000 events at once: each item as POST /v1/events takes it (idempotent by "
    "its id), each with its own result (202, 200 for a repeat, 409, 422) at its index; all "
    "accepted items are committed in one transaction before the answer",
    request=BatchIn,
    response=BatchOut,
)
async def events_batch(request: Request) -> Response:
    tenant_id, items = await _items(request)
    hub_ = hub(request)
    outcomes: list[tuple[int, Any] | ApiError | EventCreate] = []
    with schemas.budget(schemas.BATCH_BUDGET_S):
        for item in items:
            try:
                spec = parse(EventCreate, item)
                await hub_.catalog.check_event(tenant_id, spec.type, spec.parameters)
                outcomes.append(spec)
            except ApiError as exc:
                outcomes.append(exc)
    specs = [o for o in outcomes if isinstance(o, EventCreate)]
    publications = [Publication(s.type, s.parameters, s.id, s.ordering_key) for s in specs]
    published = iter(await hub_.events.publish_many(tenant_id, publications))
    results = []
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, EventCreate):
            done, spec = next(published), outcome
            outcome = (
                accepted(done)
                if done.same_request
                else hub_.events.conflict(done.event, spec.type, spec.parameters, spec.ordering_key)
            )
        results.append(_result(index, outcome))
    return JSON({"results": results})


@documented(
    "Record up to 1,000 usage completions at once: each item as POST /v1/usage-completions "
    "takes it (idempotent by transactionId), each with its own result at its index; all "
    "accepted items are committed in one transaction before the answer",
    request=BatchIn,
    response=BatchOut,
)
async def usage_completions_batch(request: Request) -> Response:
    tenant_id, items = await _items(request)
    parsed: list[tuple[UsageCompletion, Any] | ApiError] = []
    for item in items:
        try:
            parsed.append((parse(UsageCompletion, item), item))
        except ApiError as exc:
            parsed.append(exc)
    valid = [p for p in parsed if not isinstance(p, ApiError)]
    recorded = iter(await hub(request).billing.complete_usage_many(tenant_id, valid))
    results = []
    for index, entry in enumerate(parsed):
        outcome = entry if isinstance(entry, ApiError) else next(recorded)
        results.append(
            _result(index, outcome if isinstance(outcome, ApiError) else completion_answer(outcome))
        )
    return JSON({"results": results})


routes = [
    Route("/v1/events/batch", events_batch, methods=["POST"]),
    Route("/v1/usage-completions/batch", usage_completions_batch, methods=["POST"]),
]
