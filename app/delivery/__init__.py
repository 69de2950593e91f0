"""The only place that speaks HTTP to subscribers: sign, POST, and describe what happened.

The Deliverer never touches the store; the worker records the Outcome it returns.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from app import __version__
from app.clock import Clock
from app.config import Settings
from app.delivery.http1 import AnswerTooLarge, AttemptTimeout, Client, ProtocolError
from app.egress import EgressBlocked, EgressPolicy
from app.ids import random_bytes
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

    def __init__(self, client: Client, clock: Clock) -> None:
        self._client = client
        self._clock = clock

    @classmethod
    def create(
        cls, settings: Settings, clock: Clock, ssl_context: ssl.SSLContext | None = None
    ) -> Deliverer:
        client = Client(
            EgressPolicy(settings.egress_allow),
            settings.connect_timeout,
            settings.request_timeout,
            ssl_context or ssl.create_default_context(),
        )
        return cls(client, clock)

    async def close(self) -> None:
        self._client.close()

    async def send(self, url: str, msg_id: str, body: bytes, secrets: tuple[str, ...]) -> Outcome:
        started_at = self._clock.now_ms()
        start = time.perf_counter()
        try:
            answer = await self._client.post(url, _headers(msg_id, body, secrets), body)
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


def _headers(msg_id: str, body: bytes, secrets: tuple[str, ...]) -> list[tuple[bytes, bytes]]:
    timestamp = int(time.time())  # wall time for receivers' freshness checks, not the clock
    trace = random_bytes(24).hex()
    return [
        (b"content-type", b"application/json"),
        (b"user-agent", USER_AGENT),
        (b"webhook-id", msg_id.encode()),
        (b"webhook-timestamp", str(timestamp).encode()),
        (b"webhook-signature", signature_header(secrets, msg_id, timestamp, body).encode()),
        (b"traceparent", f"00-{trace[:32]}-{trace[32:]}-01".encode()),
    ]


def _elapsed_ms(start: float) -> int:
    return round((time.perf_counter() - start) * 1000)
