"""The domain's records as the store hands them out: plain frozen values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.destinations import Destination

DELIVERY_STATUSES = ("pending", "delivering", "succeeded", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Glance:
    """An endpoint at a glance (a console list row): its queue, what comes next, what it
    answered last."""

    pending: int = 0
    held: int = 0
    next_retry_at: int | None = None  # the soonest retry of a delivery that failed before
    probe_at: int | None = None  # an open circuit's next probe
    last_attempt_at: int | None = None
    last_status_code: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    tenant_id: str
    source: str  # env (a process's BILLHOOK_API_KEY), api, cli
    created_at: int
    revoked_at: int | None = None  # in the future: works until then (a rotation's overlap)
    name: str = ""
    last_used_at: int | None = None


# Events the hub raises about endpoints and deliveries. They go only to endpoints that list
# their types explicitly (one subscribed to "everything" gets the tenant's own events), and
# never to the endpoint they are about: it is the one that cannot receive them.
OPERATIONAL_TYPES = frozenset(
    {
        "endpoint.failing",
        "endpoint.recovered",
        "endpoint.disabled",
        "message.attempt.exhausted",
        "subscription.change.failed",
    }
)


LEASE_EXPIRED = "lease_expired"


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    tenant_id: str
    url: str
    secret: str
    created_at: int
    updated_at: int
    description: str = ""
    event_types: tuple[str, ...] | None = None
    filter: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    rate_limit_per_s: int | None = None
    ordered: bool = False
    status: str = "active"
    disabled_reason: str | None = None
    previous_secret: str | None = None
    previous_secret_expires_at: int | None = None
    health: str = "active"  # active | failing (circuit open)
    consecutive_failures: int = 0
    failing_since: int | None = None
    last_success_at: int | None = None
    lease_s: int | None = None  # a temporary endpoint (billhook listen) renews its lease
    lease_until: int | None = None
    type: str = "webhook"  # webhook | rabbitmq | nats | redis (app/destinations.py)
    format: str = "standard"  # standard | cloudevents
    cloudevents_mode: str = "binary"  # binary | structured
    config: dict[str, Any] = field(default_factory=dict)  # the type's settings
    credentials: str | None = None  # a broker's "user:password" (sealed at rest)

    def destination(self) -> Destination | None:
        """Where and how it delivers; None: a webhook in the standard format (the fast path)."""
        if self.type == "webhook" and self.format == "standard":
            return None
        return Destination(self.type, self.url, self.config, self.credentials, self.format,
                           self.cloudevents_mode)  # fmt: skip

    @property
    def accepting(self) -> bool:
        """New deliveries are due at once; otherwise they are stored held."""
        return self.status != "disabled" and self.health != "failing"

    def matches(self, event: Event) -> bool:
        """Subscribed to the event's type, every filter field equal, and not its subject."""
        if not self.wants(event.type) or event.about_endpoint_id == self.id:
            return False
        if self.disabled_reason == LEASE_EXPIRED:  # its listener is gone for good
            return False
        return self.accepts(event.customer_number, event.external_contract_id)

    def wants(self, event_type: str) -> bool:
        """Listed, or (no list) any type but the operational ones."""
        if self.event_types is None:
            return event_type not in OPERATIONAL_TYPES
        return event_type in self.event_types

    def accepts(self, customer_number: str | None, contract: str | None) -> bool:
        """Every filter field equal (an absent field accepts anything)."""
        wanted = self.filter
        if "customerNumber" in wanted and wanted["customerNumber"] != customer_number:
            return False
        return "externalContractId" not in wanted or wanted["externalContractId"] == contract


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    tenant_id: str
    type: str
    body: bytes
    created_at: int
    request_hash: str = ""
    idempotency_key: str | None = None
    customer_number: str | None = None
    external_contract_id: str | None = None
    ordering_key: str | None = None
    about_endpoint_id: str | None = None  # an operational event's endpoint: never sent to it


@dataclass(frozen=True, slots=True)
class NewDelivery:
    id: str
    endpoint_id: str
    next_attempt_at: int | None
    trigger: str = "scheduled"
    status: str = "pending"
    replay_id: str | None = None
    ordering_key: str | None = None  # set only for an ordered endpoint


@dataclass(frozen=True, slots=True)
class BillingRecord:
    """Preliminary billing information: the bookkeeping beside its event (the payload)."""

    id: str
    tenant_id: str
    event_id: str
    source: str  # usage_completion | charge | bill | subscription
    transaction_id: str
    customer_number: str
    external_contract_id: str | None
    currency: str
    total_gross: Decimal
    total_net: Decimal
    invoice_date: str
    request: bytes
    created_at: int
    price_models: tuple[tuple[str, int], ...] = ()
    subscription_id: str | None = None
    memo: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    status: str = "open"  # draft | open | invoiced | discarded | superseded
    invoice_number: str | None = None
    status_reason: str | None = None
    superseded_by: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """A tenant's settings: whether open billing information, and drafts, are finalized on
    their own after BILLHOOK_FINALIZE_AFTER; whether it may publish event types that are
    neither built in nor declared."""

    auto_finalize: bool = True
    auto_finalize_drafts: bool = False
    free_form_types: bool = False


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event and its fan-out, written together or not at all (the transactional outbox)."""

    event: Event
    deliveries: tuple[NewDelivery, ...]
    billing: BillingRecord | None = None


@dataclass(frozen=True, slots=True)
class PriceModel:
    id: str
    version: int
    tenant_id: str
    spec: dict[str, Any]  # PriceModelSpec as JSON-ready data (Decimals kept)
    created_at: int


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    tenant_id: str
    transaction_id: str
    customer_number: str
    external_contract_id: str
    product_id: str
    price_model_id: str
    price_model_version: int
    terms: dict[str, Any]
    status: str
    next_period_start: str | None
    next_bill_at: int | None
    cycles_billed: int
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class SubscriptionChangeRecord:
    """A change or cancellation of a subscription: queued until its date, applied once."""

    id: str
    tenant_id: str
    subscription_id: str
    kind: str  # change | cancel
    spec: dict[str, Any]
    effective_date: str
    due_at: int
    status: str  # queued | applied | cancelled | failed (could not be applied at its date)
    result: dict[str, Any] | None
    created_at: int
    updated_at: int
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class DeclaredType:
    """An event type a tenant declared for its own events, with an optional JSON Schema."""

    tenant_id: str
    name: str
    description: str
    schema: dict[str, Any] | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Inserted:
    event: Event
    created: bool
    deliveries: int | None  # None: a replayed idempotency key, count not read


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    tenant_id: str
    event_id: str
    endpoint_id: str
    status: str
    trigger: str
    attempts: int
    next_attempt_at: int | None
    last_status_code: int | None
    last_error: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Attempt:
    id: str
    delivery_id: str
    attempt: int
    trigger: str
    started_at: int
    duration_ms: int
    status_code: int | None
    error: str | None
    response_body: str


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery with everything needed to send it."""

    delivery_id: str
    tenant_id: str
    event_id: str
    endpoint_id: str
    event_type: str
    attempts: int
    trigger: str
    lease_until: int
    url: str
    body: bytes
    secrets: tuple[str, ...]
    ordering_key: str | None = None
    rate_limit_per_s: int | None = None
    destination: Destination | None = None  # None: a webhook in the standard format
    event_time: int = 0  # when the event was accepted (CloudEvents `time`)
    subject: str | None = None  # its customer number (CloudEvents `subject`)


@dataclass(frozen=True, slots=True)
class Finished:
    """What the worker learned from one attempt, to record in a batch."""

    job: Job
    attempt: Attempt
    status: str  # pending (retry) | succeeded | failed
    next_attempt_at: int | None


@dataclass(frozen=True, slots=True)
class Replay:
    """A job that re-sends what an endpoint missed (or never had: a backfill), paced."""

    id: str
    tenant_id: str
    endpoint_id: str
    since: int
    until: int | None
    only_failed: bool
    event_types: tuple[str, ...] | None
    rate_per_s: int
    status: str  # running | done | cancelled
    matched: int
    enqueued: int
    cursor: str | None
    next_run_at: int
    created_at: int
    updated_at: int
    paced_until: int | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """A finalized invoice or credit note as stored."""

    id: str
    tenant_id: str
    number: str
    document: bytes  # the notified parameters (JSON)
    total_gross: Decimal
    total_net: Decimal
    event_id: str
    created_at: int
    customer_number: str = ""
    invoice_number: str | None = None  # a credit note's invoice
    credited_minor: int = 0  # an invoice's credit notes, in minor units
    gross_minor: int = 0
