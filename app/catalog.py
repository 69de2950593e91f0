"""The event-type catalog: every type billhook sends, with the JSON Schema of its body and an
example (app/examples.json, taken from real flows; the billing information's is seed 003), and
the types each tenant declares for its own events, with an optional JSON Schema that
`POST /v1/events` enforces.

Subscribing an endpoint to a type that is neither is refused with the closest names: a typo
must not silently receive nothing. Publishing one is refused the same way unless the tenant
opted in to free-form types (`PATCH /v1/settings`); a published built-in type must match its
schema as a declared one does.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from app import jsoncodec, payloads, schemas
from app.billing import change_events, information
from app.cache import CounterCache
from app.clock import Clock
from app.errors import Conflict, NotFound, ValidationFailed
from app.invoicing.documents import CREDIT_NOTE_EVENT, INVOICE_EVENT
from app.records import DeclaredType
from app.store import Store

EXAMPLES = Path(__file__).with_name("examples.json")
BUILT_IN: dict[str, type[payloads.Payload]] = {
    information.EVENT_TYPE: payloads.BillingInformationAvailable,
    information.DISCARDED: payloads.BillingInformationDiscarded,
    information.SUPERSEDED: payloads.BillingInformationSuperseded,
    information.SUBSCRIPTION_CHANGED: payloads.SubscriptionChanged,
    information.SUBSCRIPTION_CANCELLED: payloads.SubscriptionCancelled,
    change_events.QUEUED: payloads.SubscriptionChangeNotice,
    change_events.EDITED: payloads.SubscriptionChangeNotice,
    change_events.WITHDRAWN: payloads.SubscriptionChangeNotice,
    change_events.FAILED: payloads.SubscriptionChangeFailed,
    INVOICE_EVENT: payloads.InvoiceFinalized,
    CREDIT_NOTE_EVENT: payloads.CreditNoteCreated,
    "endpoint.failing": payloads.EndpointFailing,
    "endpoint.recovered": payloads.EndpointRecovered,
    "endpoint.disabled": payloads.EndpointDisabled,
    "message.attempt.exhausted": payloads.AttemptsExhausted,
    "webhook.test": payloads.WebhookTest,
}


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    description: str
    schema: dict[str, Any] | None  # of the whole body: {"parameters": …, "type": …}
    example: dict[str, Any] | None
    built_in: bool


@functools.cache
def envelopes() -> dict[str, type[BaseModel]]:
    """Each built-in type's body as a model (for /openapi.json's webhooks)."""
    return {name: payloads.envelope(name, model) for name, model in BUILT_IN.items()}


@functools.cache
def built_in() -> tuple[EventType, ...]:
    examples = jsoncodec.loads(EXAMPLES.read_bytes())
    return tuple(
        EventType(
            name,
            (model.__doc__ or "").strip(),
            envelopes()[name].model_json_schema(),
            examples[name],
            True,
        )
        for name, model in BUILT_IN.items()
    )


@dataclass(frozen=True, slots=True)
class _Declared:
    type: DeclaredType
    schema: schemas.Compiled | None  # compiled once per load, not once per event


@dataclass(frozen=True, slots=True)
class _Rules:
    """What a tenant may publish: its declared types, and whether others pass too."""

    declared: dict[str, _Declared]
    free_form: bool


def suggestions(name: str, known: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)


class Catalog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._rules: CounterCache[str, _Rules] = CounterCache(
            lambda: store.counters.value("event_types"), self._load
        )

    async def _load(self, tenant_id: str) -> _Rules:
        found = await self._store.event_types.of_tenant(tenant_id)
        settings = await self._store.tenants.settings(tenant_id)
        declared = {
            t.name: _Declared(t, None if t.schema is None else schemas.Compiled(t.schema))
            for t in found
        }
        return _Rules(declared, settings.free_form_types)

    def forget(self) -> None:
        """A tenant's settings changed in this process: read them again at the next event."""
        self._rules.invalidate()

    async def list(self, tenant_id: str) -> list[EventType]:
        declared = [d.type for d in (await self._rules.get(tenant_id)).declared.values()]
        own = [EventType(t.name, t.description, t.schema, None, False) for t in declared]
        return [*built_in(), *sorted(own, key=lambda t: t.name)]

    async def declare(
        self, tenant_id: str, name: str, description: str, schema: dict[str, Any] | None
    ) -> EventType:
        """A tenant's own event type; 409 when the name is taken, 422 for a schema that is
        not a JSON Schema (draft 2020-12) billhook can run safely (app/schemas.py)."""
        if name in BUILT_IN:
            raise Conflict(f"{name!r} is a built-in event type")
        if schema is not None:
            try:
                schemas.check(schema)
            except schemas.SchemaRefused as exc:
                message = f"not an acceptable JSON Schema: {exc.message}"
                details = [{"loc": ["schema", *exc.path], "msg": message}]
                raise ValidationFailed(message, details) from exc
        declared = DeclaredType(tenant_id, name, description, schema, self._clock.now_ms())
        if not await self._store.event_types.insert(declared):
            raise Conflict(f"the event type {name!r} is declared already")
        self._rules.invalidate()
        return EventType(name, description, schema, None, False)

    async def remove(self, tenant_id: str, name: str) -> None:
        """A declared type goes; 409 while an endpoint subscribes to it (it would then list a
        type nobody can subscribe to)."""
        if name in BUILT_IN:
            raise Conflict(f"{name!r} is a built-in event type")
        subscribed = [
            e.id
            for e in await self._store.endpoints.of_tenant(tenant_id)
            if e.event_types and name in e.event_types
        ]
        if subscribed:
            raise Conflict(
                f"endpoints subscribe to {name!r}: remove it from their event_types first",
                [{"endpoint_id": endpoint_id} for endpoint_id in subscribed],
            )
        if not await self._store.event_types.delete(tenant_id, name):
            raise NotFound(f"no declared event type {name!r}")
        self._rules.invalidate()

    async def check_subscription(self, tenant_id: str, types: Sequence[str] | None) -> None:
        """An endpoint may subscribe to built-in and declared types only (422 with the
        closest names otherwise)."""
        if not types:
            return
        known = set(BUILT_IN) | set((await self._rules.get(tenant_id)).declared)
        for index, name in enumerate(types):
            if name not in known:
                raise _unknown(name, known, ["event_types", str(index)])

    async def check_event(self, tenant_id: str, name: str, parameters: Any) -> None:
        """An event's type is built in or declared, or the tenant takes free-form types (422
        with the closest names otherwise), and its parameters hold to the type's schema (422
        naming where they do not)."""
        if name in BUILT_IN:
            _check_built_in(name, parameters)
            return
        rules = await self._rules.get(tenant_id)
        declared = rules.declared.get(name)
        if declared is None:
            if not rules.free_form:
                known = set(BUILT_IN) | set(rules.declared)
                fix = ", or allow free-form types: PATCH /v1/settings"
                raise _unknown(name, known, ["type"], fix)
            return
        if declared.schema is None:
            return
        try:
            # Off the event loop: a costly schema slows its own request, nobody else's.
            problems = await asyncio.to_thread(declared.schema.problems, parameters)
        except schemas.BudgetSpent as exc:
            raise ValidationFailed(
                f"checking the parameters against the schema of {name!r} took more than its "
                f"budget ({schemas.BUDGET_S:g} s of CPU per request, {schemas.BATCH_BUDGET_S:g} "
                "s per batch): simplify the schema or send fewer events per request"
            ) from exc
        if problems:
            details = [{"loc": ["parameters", *p.loc], "msg": p.msg} for p in problems]
            raise ValidationFailed(f"the parameters do not match the schema of {name!r}", details)


def _unknown(name: str, known: set[str], loc: list[str], fix: str = "") -> ValidationFailed:
    close = suggestions(name, known)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    message = f"unknown event type {name!r} (declare it: POST /v1/event-types{fix}){hint}"
    return ValidationFailed(message, [{"loc": loc, "msg": message, "suggestions": close}])


def _check_built_in(name: str, parameters: Any) -> None:
    """A built-in type's parameters are what its subscribers are promised (its envelope)."""
    try:
        envelopes()[name].model_validate({"parameters": parameters, "type": name})
    except ValidationError as exc:
        prefix = f"the parameters do not match the schema of {name!r}:"
        raise ValidationFailed.from_pydantic(exc, prefix) from exc
