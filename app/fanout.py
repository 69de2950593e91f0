"""Which endpoints an event goes to, and the operational events the hub raises itself.

Pure: used where events are published (app/events.py) and where the worker records outcomes
(the store's turn), so both fan out the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app import jsoncodec
from app.ids import new_id
from app.records import Endpoint, Event, NewDelivery


def envelope(event_type: str, parameters: dict[str, Any]) -> bytes:
    """The exact bytes every subscriber gets: the seed's envelope and nothing else."""
    return jsoncodec.dumps({"parameters": parameters, "type": event_type})


def matching(event: Event, endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    return [ep for ep in endpoints if ep.matches(event)]


def deliveries_for(
    event: Event, endpoints: Iterable[Endpoint], now: int
) -> tuple[NewDelivery, ...]:
    """One delivery per matching endpoint; its id is the event's plus an index (unique because
    the event id is, and cheaper than fresh random bits on the accept path)."""
    stem = "dlv_" + event.id.partition("_")[2]
    return tuple(
        delivery_to(event, ep, now, delivery_id=f"{stem}{n:02x}")
        for n, ep in enumerate(matching(event, endpoints))
    )


def delivery_to(
    event: Event,
    endpoint: Endpoint,
    now: int,
    *,
    delivery_id: str | None = None,
    trigger: str = "scheduled",
    replay_id: str | None = None,
    due: int | None = None,
) -> NewDelivery:
    """Due now (or at `due`), or held while the endpoint is disabled or failing; ordered
    endpoints keep the event's ordering key so deliveries of one key go one at a time."""
    return NewDelivery(
        delivery_id or new_id("dlv", now),
        endpoint.id,
        (now if due is None else due) if endpoint.accepting else None,
        trigger=trigger,
        replay_id=replay_id,
        ordering_key=event.ordering_key if endpoint.ordered else None,
    )


def operational(tenant_id: str, event_type: str, parameters: dict[str, Any], now: int) -> Event:
    """An event the hub raises about an endpoint (endpoint.failing, message.attempt.exhausted,
    …): it names that endpoint, which never receives it."""
    return Event(
        id=new_id("evt", now),
        tenant_id=tenant_id,
        type=event_type,
        body=envelope(event_type, parameters),
        created_at=now,
        about_endpoint_id=parameters.get("endpointId"),
    )
