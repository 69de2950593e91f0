"""The API's request and response shapes; /openapi.json is generated from these."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from app.fields import Description, Input, Name, Output

EventType = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_./:-]+$"),
]
PositiveInt = Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
StrictFlag = Annotated[bool, Field(strict=True)]


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def check_url(value: str) -> str:
    if len(value) > 2048:
        raise ValueError("must be at most 2048 characters")
    if any(c <= " " or c >= "\x7f" for c in value):
        raise ValueError("must be ASCII without spaces (percent-encode the rest, punycode hosts)")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use the signature to authenticate")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("must have a port from 1 to 65535 (or none)")
    _check_host(parts.hostname)
    return value


def _check_host(host: str) -> None:
    """An IP address, or a DNS name of labels of 1-63 letters, digits, '-' (not at either end)
    and '_'. A name ending in a numeric label is an IPv4 address in a shorthand resolvers
    accept (0x7f.1, 2130706433): only the dotted-quad form is taken."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid host name")
    if labels[-1].isdigit() or labels[-1].lower().startswith("0x"):
        raise ValueError(f"{host!r} is not a valid host name (write an IPv4 address as a.b.c.d)")


class EndpointFilter(Input):
    customerNumber: Name | None = None
    externalContractId: Name | None = None


EndpointType = Literal["webhook", "rabbitmq", "nats", "redis"]
Format = Literal["standard", "cloudevents"]
CloudEventsMode = Literal["binary", "structured"]


class EndpointCreate(Input):
    type: EndpointType = Field(
        "webhook",
        description="webhook (an http(s) URL), or a broker: rabbitmq (amqp://, an exchange and "
        "routing key), nats (nats://, a JetStream subject), redis (redis://, a stream); "
        "docs/destinations.md",
    )
    url: Annotated[str, StringConstraints(strict=True, max_length=2048)] = Field(
        description="the webhook's URL, or the broker's (its user:password, if any, is kept "
        "sealed apart and never shown)"
    )
    config: dict[str, Any] = Field(
        default_factory=dict,
        max_length=10,
        description="a broker's settings: rabbitmq {exchange, routing_key}, nats {subject}, "
        "redis {stream, maxlen}; `{type}` and `{ordering_key}` fill a routing key or subject",
    )
    format: Format = Field("standard", description="cloudevents: CloudEvents 1.0 attributes too")
    cloudevents_mode: CloudEventsMode = Field(
        "binary", description="binary (headers beside the body) or structured (one JSON document)"
    )
    description: Description = ""
    event_types: list[EventType] | None = Field(None, max_length=100)
    filter: EndpointFilter | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=50)
    rate_limit_per_s: PositiveInt | None = None
    ordered: StrictFlag = False
    lease_s: Annotated[int, Field(strict=True, ge=10, le=3600)] | None = Field(
        None,
        description="A temporary endpoint: disabled (lease_expired) unless POST "
        "/v1/endpoints/{id}/lease renews it within this many seconds (billhook listen).",
    )

    @field_validator("url")
    @classmethod
    def _webhook_url(cls, value: str, info: ValidationInfo) -> str:
        """A webhook's URL here; a broker's in the service (app/destinations.py)."""
        return check_url(value) if info.data.get("type", "webhook") == "webhook" else value


class EndpointPatch(Input):
    url: Annotated[str, StringConstraints(strict=True, max_length=2048)] | None = None
    config: dict[str, Any] | None = Field(None, max_length=10)
    format: Format | None = None
    cloudevents_mode: CloudEventsMode | None = None
    description: Description | None = None
    event_types: list[EventType] | None = Field(None, max_length=100)
    filter: EndpointFilter | None = None
    metadata: dict[str, Any] | None = Field(None, max_length=50)
    rate_limit_per_s: PositiveInt | None = None
    ordered: StrictFlag | None = None
    status: Literal["active", "disabled"] | None = None


class EndpointOut(Output):
    id: str
    type: EndpointType
    url: str = Field(description="without credentials")
    config: dict[str, Any]
    format: Format
    cloudevents_mode: CloudEventsMode
    has_credentials: bool = Field(description="the broker's credentials are kept (never shown)")
    description: str
    event_types: list[str] | None
    filter: dict[str, str]
    metadata: dict[str, Any]
    rate_limit_per_s: int | None
    ordered: bool
    status: Literal["active", "failing", "disabled"]
    disabled_reason: str | None
    created_at: str
    updated_at: str
    lease_until: str | None = Field(None, description="A temporary endpoint's lease end.")
    secret: str | None = Field(None, description="Only in the answer to POST /v1/endpoints.")


class SecretOut(Output):
    secret: str
    previous_secret_expires_at: str | None = None


class EventCreate(Input):
    type: EventType
    parameters: dict[str, Any]
    id: Name | None = Field(None, description="Client-chosen id: the idempotency key.")
    ordering_key: Name | None = None


class EventAccepted(Output):
    id: str
    type: str
    created_at: str
    deliveries: int


class DeliveryOut(Output):
    id: str
    endpoint_id: str
    status: Literal["pending", "delivering", "succeeded", "failed", "cancelled"]
    trigger: Literal["scheduled", "replay", "test"]
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None


class EventOut(Output):
    id: str
    type: str
    created_at: str
    idempotency_key: str | None
    ordering_key: str | None
    parameters: dict[str, Any]
    deliveries: list[DeliveryOut] | None = None


class AttemptOut(Output):
    id: str
    delivery_id: str
    attempt: int
    trigger: Literal["scheduled", "replay", "test"]
    started_at: str
    duration_ms: int
    status_code: int | None
    error: str | None
    response_body: str


class TenantCreate(Input):
    name: Annotated[
        str, StringConstraints(strict=True, min_length=1, max_length=100, pattern=r"^[\w .-]+$")
    ]


class TenantOut(Output):
    id: str
    name: str
    created_at: str
    api_key: str | None = Field(None, description="Shown once, in the answer that creates it.")
    key_id: str | None = None


class KeyCreate(Input):
    """A new API key; with `replaces`, a rotation: the replaced key keeps working for
    `overlap_s` seconds more (default: none), then stops."""

    name: Annotated[str, StringConstraints(strict=True, max_length=100)] = ""
    replaces: Annotated[str, StringConstraints(strict=True, max_length=64)] | None = None
    overlap_s: Annotated[int, Field(strict=True, ge=0, le=30 * 86_400)] = 0


class KeyOut(Output):
    id: str
    tenant_id: str
    name: str = ""
    api_key: str | None = Field(None, description="Shown once, in the answer that creates it.")
    created_at: str
    last_used_at: str | None = None
    revoked_at: str | None = Field(
        None, description="When it stopped, or stops, working (a rotation's overlap)."
    )


class KeyList(Output):
    data: list[KeyOut]


class ErrorBody(Output):
    code: str
    message: str
    details: list[Any]


class ErrorOut(Output):
    """Every 4xx/5xx answer."""

    error: ErrorBody


class EndpointPage(Output):
    data: list[EndpointOut]
    next_cursor: str | None


class EventPage(Output):
    data: list[EventOut]
    next_cursor: str | None


class AttemptPage(Output):
    data: list[AttemptOut]
    next_cursor: str | None


class TenantPage(Output):
    data: list[TenantOut]
    next_cursor: str | None


class WorkerHealthOut(Output):
    running: bool = Field(description="false: this process's worker stopped (it then exits)")
    last_turn_age_s: float | None = Field(
        description="seconds since the worker last claimed or recorded (it turns at least "
        "every BILLHOOK_POLL_INTERVAL)"
    )


class HealthOut(Output):
    status: Literal["ok", "worker_stopped"]
    worker: WorkerHealthOut | None = Field(
        description="this process's worker; null in a process that runs none (billhook api)"
    )
    oldest_due_age_s: float = Field(
        description="how long the oldest due delivery has waited, on every worker: how far "
        "behind the workers are (0 when none is due)"
    )


class EventReplay(Input):
    endpoint_id: Name | None = Field(None, description="Omit: every endpoint matching now.")


class EventReplayed(Output):
    event_id: str
    deliveries: list[dict[str, str]]


class ReplayCreate(Input):
    endpoint_id: Name
    since: Annotated[str, StringConstraints(strict=True, min_length=10, max_length=40)]
    until: Annotated[str, StringConstraints(strict=True, min_length=10, max_length=40)] | None = (
        None
    )
    status: Literal["failed", "all"] = "failed"
    event_types: list[EventType] | None = Field(None, max_length=100)
    dry_run: StrictFlag = False
    rate_per_s: Annotated[int, Field(strict=True, ge=1, le=100_000)] | None = None


class ReplayOut(Output):
    id: str
    endpoint_id: str
    status: Literal["running", "done", "cancelled"]
    matched: int
    enqueued: int
    succeeded: int
    failed: int
    pending: int
    rate_per_s: int
    since: str
    until: str | None
    created_at: str


class ReplayCount(Output):
    matched: int


class ReplayPage(Output):
    data: list[ReplayOut]
    next_cursor: str | None


class EndpointHealthOut(Output):
    status: Literal["active", "failing", "disabled"]
    disabled_reason: str | None
    consecutive_failures: int
    failing_since: str | None
    last_success_at: str | None
    last_hour: dict[str, Any]
    pending: int
    held: int
    oldest_pending_age_s: float | None
    blocked_ordering_keys: int


class ConsoleLinkCreate(Input):
    role: Literal["viewer", "operator", "admin"] = Field(
        "viewer", description="viewer looks; operator also changes; admin: only the admin token"
    )
    tenant_id: Name | None = Field(
        None, description="The tenant it opens (a tenant key: its own, the default)"
    )
    expires_in_s: Annotated[int, Field(strict=True, ge=60, le=86_400)] = 900


class ConsoleLinkOut(Output):
    """A one-time sign-in link: the first visit uses it up."""

    url: str
    role: str
    tenant_id: str | None
    expires_at: str


class EventTypeCreate(Input):
    name: EventType
    description: Description = ""
    schema_: dict[str, Any] | None = Field(
        None,
        alias="schema",
        description="JSON Schema (draft 2020-12) that each event's `parameters` must match",
    )


class EventTypeOut(Output):
    name: str
    description: str
    builtIn: bool
    schema_: dict[str, Any] | None = Field(alias="schema")
    example: dict[str, Any] | None


class EventTypePage(Output):
    data: list[EventTypeOut]
    next_cursor: str | None


class BatchIn(Input):
    """Items as the single route takes them; each is validated on its own."""

    items: list[Any] = Field(min_length=1, max_length=1000)


class BatchResult(Output):
    index: int
    status: int
    result: dict[str, Any] | None = None  # the single route's answer (2xx)
    error: dict[str, Any] | None = None  # the single route's error: code, message, details


class BatchOut(Output):
    results: list[BatchResult]


class CancelledOut(Output):
    cancelled: int
