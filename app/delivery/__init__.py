"""The only place that speaks to subscribers: sign, POST (or publish into a merchant's broker:
brokers.py), and describe what happened.

The Deliverer never touches the store; the worker records the Outcome it returns.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from app import __version__, cloudevents
from app.clock import Clock
from app.config import Settings
from app.delivery.brokers import BrokerRefused, Brokers, Message
from app.delivery.http1 import AnswerTooLarge, AttemptTimeout, Client, ProtocolError
from app.destinations import Destination
from app.egress import EgressBlocked, EgressPolicy
from app.ids import random_bytes
from app.records import Job
from app.signing import signature_header

USER_AGENT = f"billhook/{__version__}".encode()
RESPONSE_BODY_LIMIT = 2048


@dataclass(frozen=True, slots=True)
class Outcome:
    started_at: int
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    response_body: str = ""
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def slow_down(self) -> bool:
        """The receiver is overloaded (timeout or 429): retries wait at least a minute."""
        return self.error == "timeout" or self.status_code == 429


def classify_status(status: int) -> str | None:
    """Any 2xx is success; redirects are not followed, so a 3xx is a failure too."""
    if 200 <= status < 300:
        return None
    if status >= 500:
        return "http_5xx"
    if status >= 400:
        return "http_4xx"
    return "http_3xx"


def classify_exception(exc: BaseException) -> str:
    if isinstance(exc, EgressBlocked):
        return "egress_blocked"
    if isinstance(exc, BrokerRefused):
        return "broker_refused"
    if isinstance(exc, AnswerTooLarge):
        return "response_too_large"
    if isinstance(exc, ProtocolError):
        return "invalid_response"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls_error"
    if isinstance(exc, AttemptTimeout | TimeoutError):
        return "timeout"
    return "connect_error"


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_s)
    except (TypeError, ValueError, IndexError):
        return None


class Deliverer:
    """One pooled client for every subscriber; `send` never raises for network trouble."""

    def __init__(self, client: Client, clock: Clock, brokers: Brokers | None = None) -> None:
        self._client = client
        self._clock = clock
        self._brokers = brokers

    @classmethod
    def create(
        cls, settings: Settings, clock: Clock, ssl_context: ssl.SSLContext | None = None
    ) -> Deliverer:
        policy = EgressPolicy(settings.egress_allow)
        client = Client(
            policy,
            settings.connect_timeout,
            settings.request_timeout,
            ssl_context or ssl.create_default_context(),
        )
        return cls(client, clock, Brokers(policy, settings.request_timeout))

    async def close(self) -> None:
        self._client.close()
        if self._brokers is not None:
            await self._brokers.close()

    async def deliver(self, job: Job) -> Outcome:
        """The job sent where its endpoint says: a webhook, or a broker."""
        destination = job.destination
        if destination is None:
            return await self.send(job.url, job.event_id, job.body, job.secrets)
        body, content_type, attributes = _shaped(job, destination)
        if destination.type == "webhook":
            extra = [(k.encode(), v.encode()) for k, v in attributes]
            return await self.send(job.url, job.event_id, body, job.secrets, content_type, extra)
        return await self._publish(job, destination, body, content_type, attributes)

    async def _publish(
        self, job: Job, destination: Destination, body: bytes, content_type: str,
        attributes: list[tuple[str, str]],
    ) -> Outcome:  # fmt: skip
        started_at = self._clock.now_ms()
        start = time.perf_counter()
        if destination.type == "rabbitmq":  # the AMQP binding's prefix
            attributes = [(k.replace("ce-", "cloudEvents:", 1), v) for k, v in attributes]
        headers = [(k.decode(), v.decode()) for k, v in _signed(job.event_id, body, job.secrets)]
        message = Message([*headers, *attributes], body, content_type, job.delivery_id,
                          job.event_type, job.ordering_key)  # fmt: skip
        if self._brokers is None:
            raise RuntimeError("this deliverer has no brokers")
        try:
            answer = await self._brokers.publish(destination, message)
        except Exception as exc:  # every failure is an attempt's outcome
            said = f"{type(exc).__name__}: {exc}"[:RESPONSE_BODY_LIMIT]
            error = classify_exception(exc)
            return Outcome(started_at, _elapsed_ms(start), error=error, response_body=said)
        return Outcome(started_at, _elapsed_ms(start), response_body=answer)

    async def send(
        self,
        url: str,
        msg_id: str,
        body: bytes,
        secrets: tuple[str, ...],
        content_type: str = "application/json",
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> Outcome:
        started_at = self._clock.now_ms()
        start = time.perf_counter()
        headers = _headers(msg_id, body, secrets, content_type.encode()) + (extra or [])
        try:
            answer = await self._client.post(url, headers, body)
        except (TimeoutError, OSError, AttemptTimeout, ProtocolError, ValueError) as exc:
            return Outcome(started_at, _elapsed_ms(start), error=classify_exception(exc))
        retry_after = None
        if answer.status in (429, 503):
            retry_after = parse_retry_after(answer.retry_after, time.time())
        return Outcome(
            started_at,
            _elapsed_ms(start),
            status_code=answer.status,
            error=classify_status(answer.status),
            response_body=answer.body[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace"),
            retry_after_s=retry_after,
        )


def _headers(
    msg_id: str, body: bytes, secrets: tuple[str, ...], content_type: bytes = b"application/json"
) -> list[tuple[bytes, bytes]]:
    trace = random_bytes(24).hex()
    return [
        (b"content-type", content_type),
        (b"user-agent", USER_AGENT),
        *_signed(msg_id, body, secrets),
        (b"traceparent", f"00-{trace[:32]}-{trace[32:]}-01".encode()),
    ]


def _signed(msg_id: str, body: bytes, secrets: tuple[str, ...]) -> list[tuple[bytes, bytes]]:
    """The Standard Webhooks headers, the same for every type of endpoint."""
    timestamp = int(time.time())  # wall time for receivers' freshness checks, not the clock
    return [
        (b"webhook-id", msg_id.encode()),
        (b"webhook-timestamp", str(timestamp).encode()),
        (b"webhook-signature", signature_header(secrets, msg_id, timestamp, body).encode()),
    ]


def _shaped(job: Job, destination: Destination) -> tuple[bytes, str, list[tuple[str, str]]]:
    """(body, content type, CloudEvents headers) of the job for its endpoint's format."""
    if destination.format != "cloudevents":
        return job.body, "application/json", []
    found = cloudevents.attributes(
        job.event_id, job.event_type, job.tenant_id, job.event_time, job.subject
    )
    if destination.cloudevents_mode == "structured":
        return cloudevents.structured(found, job.body), cloudevents.STRUCTURED.decode(), []
    return job.body, "application/json", cloudevents.binary_headers(found)


def _elapsed_ms(start: float) -> int:
    return round((time.perf_counter() - start) * 1000)
