"""Accepting many items at once — the batch routes and queue ingest (app/ingest/) alike: each
item is validated, priced and answered exactly as its single route answers it (202, 200 for a
repeat, 409, 422), and every accepted item is committed in one transaction before any answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from app import schemas
from app.billing.models import Charge, UsageCompletion
from app.billing.service import BillingService, Recorded
from app.catalog import Catalog
from app.clock import to_rfc3339
from app.errors import ApiError
from app.events import EventService, Publication, Published, Turn
from app.inputs import parse
from app.models import EventCreate

KINDS = ("usage_completions", "charges", "events")
M = TypeVar("M", UsageCompletion, Charge)
Outcome = tuple[int, dict[str, Any]] | ApiError


@dataclass(frozen=True, slots=True)
class Item:
    """One item: its decoded JSON, and the idempotency key to use when the item names none
    (a broker's message id: a redelivered message is then a repeat, not a second event)."""

    body: Any
    key: str | None = None


def accepted(published: Published) -> tuple[int, dict[str, Any]]:
    """202 and the stored event, or 200 for a repeat."""
    answer = {
        "id": published.event.id,
        "type": published.event.type,
        "created_at": to_rfc3339(published.event.created_at),
        "deliveries": published.deliveries,
    }
    return (202 if published.created else 200), answer


def billed(recorded: Recorded) -> tuple[int, dict[str, Any]]:
    """202 and the billing information, or 200 for a repeat."""
    body = {"event_id": recorded.event.id, "billing_information": recorded.parameters}
    return (202 if recorded.created else 200), body


class Intake:
    def __init__(self, catalog: Catalog, events: EventService, billing: BillingService) -> None:
        self._catalog = catalog
        self._events = events
        self._billing = billing

    async def take(
        self, kind: str, tenant_id: str, items: Sequence[Item], turn: Turn | None = None
    ) -> list[Outcome]:
        """The items of one kind (KINDS), each with its outcome at its index; `turn` is
        awaited after validation and pricing, just before the write (queue ingest's order)."""
        if kind == "events":
            return await self.events(tenant_id, items, turn)
        if kind == "charges":
            return await self.charges(tenant_id, items, turn)
        return await self.usage_completions(tenant_id, items, turn)

    async def events(
        self, tenant_id: str, items: Sequence[Item], turn: Turn | None = None
    ) -> list[Outcome]:
        specs: list[EventCreate | ApiError] = []
        with schemas.budget(schemas.BATCH_BUDGET_S):
            for item in items:
                specs.append(await self._event(tenant_id, item))
        valid = [s for s in specs if isinstance(s, EventCreate)]
        publications = [Publication(s.type, s.parameters, s.id, s.ordering_key) for s in valid]
        published = iter(await self._events.publish_many(tenant_id, publications, turn))
        outcomes: list[Outcome] = []
        for spec in specs:
            if isinstance(spec, ApiError):
                outcomes.append(spec)
                continue
            done = next(published)
            outcomes.append(
                accepted(done)
                if done.same_request
                else self._events.conflict(
                    done.event, spec.type, spec.parameters, spec.ordering_key
                )
            )
        return outcomes

    async def _event(self, tenant_id: str, item: Item) -> EventCreate | ApiError:
        try:
            spec = parse(EventCreate, item.body)
            await self._catalog.check_event(tenant_id, spec.type, spec.parameters)
        except ApiError as exc:
            return exc
        if spec.id is None and item.key is not None:
            spec = spec.model_copy(update={"id": item.key})
        return spec

    async def usage_completions(
        self, tenant_id: str, items: Sequence[Item], turn: Turn | None = None
    ) -> list[Outcome]:
        parsed = [_parsed(UsageCompletion, item) for item in items]
        valid = [(spec, item.body) for spec, item in zip(parsed, items, strict=True)
                 if not isinstance(spec, ApiError)]  # fmt: skip
        return _answers(parsed, await self._billing.complete_usage_many(tenant_id, valid, turn))

    async def charges(
        self, tenant_id: str, items: Sequence[Item], turn: Turn | None = None
    ) -> list[Outcome]:
        parsed = [_parsed(Charge, item) for item in items]
        valid = [
            (spec, item.body, None if spec.transactionId else item.key)
            for spec, item in zip(parsed, items, strict=True)
            if not isinstance(spec, ApiError)
        ]
        return _answers(parsed, await self._billing.charge_many(tenant_id, valid, turn))


def _parsed(model: type[M], item: Item) -> M | ApiError:
    try:
        return parse(model, item.body)
    except ApiError as exc:
        return exc


def _answers(parsed: Sequence[object], recorded: Sequence[Recorded | ApiError]) -> list[Outcome]:
    """Each item's outcome at its index: its parse error, or what recording it answered."""
    done = iter(recorded)
    outcomes: list[Outcome] = []
    for entry in parsed:
        outcome = entry if isinstance(entry, ApiError) else next(done)
        outcomes.append(outcome if isinstance(outcome, ApiError) else billed(outcome))
    return outcomes
