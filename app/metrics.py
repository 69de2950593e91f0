"""Prometheus metrics (GET /metrics). Module-level, so every part of one process shares them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_PUBLISHED = Counter(
    "billhook_events_published_total", "Events stored with their fan-out", registry=REGISTRY
)
DELIVERIES_CREATED = Counter(
    "billhook_deliveries_created_total", "Deliveries created by fan-out", registry=REGISTRY
)
ATTEMPTS = Counter(
    "billhook_delivery_attempts_total",
    "Delivery attempts by outcome (success or the attempt error code)",
    ["outcome"],
    registry=REGISTRY,
)
ATTEMPT_SECONDS = Histogram(
    "billhook_delivery_attempt_seconds",
    "Duration of delivery attempts",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
    registry=REGISTRY,
)
OUTCOMES = (
    "success",
    "timeout",
    "connect_error",
    "invalid_response",
    "response_too_large",
    "tls_error",
    "egress_blocked",
    "http_3xx",
    "http_4xx",
    "http_5xx",
    "broker_refused",  # a broker endpoint's broker did not take the message
)
# Bound once: .labels() per attempt costs more than the increment itself on the hot path.
ATTEMPTS_BY_OUTCOME = {outcome: ATTEMPTS.labels(outcome) for outcome in OUTCOMES}

IN_FLIGHT = Gauge("billhook_worker_in_flight", "Attempts being sent right now", registry=REGISTRY)
OLDEST_DUE_AGE = Gauge(
    "billhook_oldest_due_delivery_age_seconds",
    "How long the oldest due delivery has been waiting (0 when none is due)",
    registry=REGISTRY,
)

INGESTED = Counter(
    "billhook_ingest_messages_total",
    "Queue ingest's messages by source and outcome (accepted, repeated, dead_lettered)",
    ["source", "outcome"],
    registry=REGISTRY,
)
INGEST_RETRIES = Counter(
    "billhook_ingest_retries_total",
    "Batches queue ingest gave back to the broker to retry (the store or the broker failed)",
    ["source"],
    registry=REGISTRY,
)


def render() -> bytes:
    return generate_latest(REGISTRY)
