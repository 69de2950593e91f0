"""The event-type catalog: every type billhook sends, with the JSON Schema of its body and an
example (app/examples.json, taken from real flows; the billing information's is seed 003), and
the types each tenant declares for its own events, with an optional JSON Schema that
`POST /v1/events` enforces.

Subscribing an endpoint to a type that is neither is refused with the closest names: a typo
must not silently receive nothing.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel

from app import jsoncodec, payloads
from app.billing import information
from app.cache import CounterCache
from app.clock import Clock
from app.errors import Conflict, ValidationFailed
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


def suggestions(name: str, known: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)


class Catalog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._declared: CounterCache[str, dict[str, DeclaredType]] = CounterCache(
            lambda: store.counters.value("event_types"), self._load
        )

    async def _load(self, tenant_id: str) -> dict[str, DeclaredType]:
        return {t.name: t for t in await self._store.event_types.of_tenant(tenant_id)}

    async def list(self, tenant_id: str) -> list[EventType]:
        declared = await self._declared.get(tenant_id)
        own = [EventType(t.name, t.description, t.schema, None, False) for t in declared.values()]
        return [*built_in(), *sorted(own, key=lambda t: t.name)]

    async def declare(
        self, tenant_id: str, name: str, description: str, schema: dict[str, Any] | None
    ) -> EventType:
        """A tenant's own event type; 409 when the name is taken, 422 for a schema that is
        not a JSON Schema (draft 2020-12)."""
        if name in BUILT_IN:
            raise Conflict(f"{name!r} is a built-in event type")
        if schema is not None:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise ValidationFailed.field("schema", f"not a JSON Schema: {exc.message}") from exc
        declared = DeclaredType(tenant_id, name, description, schema, self._clock.now_ms())
        if not await self._store.event_types.insert(declared):
            raise Conflict(f"the event type {name!r} is declared already")
        self._declared.invalidate()
        return EventType(name, description, schema, None, False)

    async def check_subscription(self, tenant_id: str, types: Sequence[str] | None) -> None:
        """An endpoint may subscribe to built-in and declared types only (422 with the
        closest names otherwise)."""
        if not types:
            return
        known = set(BUILT_IN) | set(await self._declared.get(tenant_id))
        for index, name in enumerate(types):
            if name not in known:
                close = suggestions(name, known)
                hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                message = f"unknown event type {name!r} (declare it: POST /v1/event-types){hint}"
                raise ValidationFailed(
                    message,
                    [{"loc": ["event_types", str(index)], "msg": message, "suggestions": close}],
                )

    async def check_event(self, tenant_id: str, name: str, parameters: Any) -> None:
        """A declared type's JSON Schema holds for an event's parameters (422 naming where it
        does not); built-in and undeclared types pass as before."""
        declared = (await self._declared.get(tenant_id)).get(name)
        if declared is None or declared.schema is None:
            return
        errors = sorted(
            Draft202012Validator(declared.schema).iter_errors(parameters), key=lambda e: e.path
        )
        if errors:
            details = [
                {"loc": ["parameters", *map(str, e.absolute_path)], "msg": e.message}
                for e in errors[:20]
            ]
            raise ValidationFailed(f"the parameters do not match the schema of {name!r}", details)
