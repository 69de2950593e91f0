"""CloudEvents 1.0 for endpoints that ask for them (`format: cloudevents`). Pure.

The event's attributes: `id` is the webhook id (stable over retries and replays, as
`webhook-id`), `type` the event type, `source` the tenant (`/billhook/tenants/<id>`), `time`
when the event was accepted, `subject` the customer number where there is one. Binary mode
(the default) sends them beside the unchanged body — as `ce-*` HTTP and NATS headers, as
`cloudEvents:*` AMQP headers, as `ce-*` Redis stream fields — so the Standard Webhooks signature
is the same as without them. Structured mode sends one JSON document
(`application/cloudevents+json`) whose `data` is the body, and signs that document.
"""

from __future__ import annotations

from dataclasses import dataclass

from app import jsoncodec
from app.clock import to_rfc3339

SPECVERSION = "1.0"
STRUCTURED = b"application/cloudevents+json"


@dataclass(frozen=True, slots=True)
class Attributes:
    id: str
    type: str
    source: str
    time: str
    subject: str | None

    def items(self) -> list[tuple[str, str]]:
        found = [("specversion", SPECVERSION), ("id", self.id), ("type", self.type),
                 ("source", self.source), ("time", self.time)]  # fmt: skip
        if self.subject:
            found.append(("subject", self.subject))
        return found


def attributes(
    event_id: str, event_type: str, tenant_id: str, created_at: int, subject: str | None
) -> Attributes:
    return Attributes(
        event_id,
        event_type,
        f"/billhook/tenants/{tenant_id}",
        to_rfc3339(created_at) or "",
        subject,
    )


def binary_headers(found: Attributes, prefix: str = "ce-") -> list[tuple[str, str]]:
    """The attributes as headers: `ce-` (HTTP, NATS, Redis fields), `cloudEvents:` (AMQP)."""
    return [(f"{prefix}{name}", value) for name, value in found.items()]


def structured(found: Attributes, body: bytes) -> bytes:
    """The whole event as one JSON document; `data` is the body as it would be sent alone."""
    document = dict(found.items())
    document["datacontenttype"] = "application/json"
    return jsoncodec.dumps({**document, "data": jsoncodec.loads(body)})
