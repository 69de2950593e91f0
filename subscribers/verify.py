"""Verify billhook webhooks (Standard Webhooks). Standard library only: copy this file.

    verifier = Verifier("whsec_...")              # or ["whsec_new", "whsec_old"] while rotating
    event_id = verifier.verify(body, headers)     # raises WebhookVerificationError
    if dedupe.first_time(event_id): process(parse(body))

`webhook-id` is the event id: the same on every retry and replay of an event, so it is the
de-duplication key. Deliveries are at-least-once; de-duplicate before acting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(Exception):
    """The request is not a genuine, fresh billhook delivery; answer 401 and drop it."""


def parse(body: bytes) -> Any:
    """The event as Python values with every amount a Decimal, exactly as sent: 22.70 stays
    22.70 (a float would make it 22.7, and sums of floats drift by fractions of a cent)."""
    return json.loads(body, parse_float=Decimal)


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix("whsec_")
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


class Verifier:
    def __init__(self, secrets: str | Iterable[str], tolerance_s: int = DEFAULT_TOLERANCE_S):
        listed = [secrets] if isinstance(secrets, str) else list(secrets)
        if not listed:
            raise ValueError("at least one secret is needed")
        self._keys = [_key(s) for s in listed]
        self._tolerance = tolerance_s

    def verify(self, body: bytes, headers: Mapping[str, str], now: float | None = None) -> str:
        """Return the webhook id when a signature matches and the timestamp is fresh."""
        lowered = {k.lower(): v for k, v in headers.items()}
        msg_id = lowered.get("webhook-id")
        timestamp = lowered.get("webhook-timestamp")
        signatures = lowered.get("webhook-signature")
        if not (msg_id and timestamp and signatures):
            raise WebhookVerificationError("missing webhook-id, -timestamp or -signature header")
        if not timestamp.isdigit():
            raise WebhookVerificationError("webhook-timestamp is not unix seconds")
        age = (time.time() if now is None else now) - int(timestamp)
        if abs(age) > self._tolerance:
            raise WebhookVerificationError(
                f"timestamp is {age:.0f}s off (tolerance {self._tolerance}s)"
            )
        signed = f"{msg_id}.{timestamp}.".encode() + body
        for key in self._keys:
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            for candidate in signatures.split(" "):
                version, _, value = candidate.partition(",")
                if version == "v1" and hmac.compare_digest(value, expected):
                    return msg_id
        raise WebhookVerificationError("no signature matches")


class Deduplicator:
    """Remembers the last `capacity` webhook ids in memory.

    Enough for a single process; a receiver with several processes or restarts should also
    keep a unique constraint on the id where it stores events (receiver.py does).
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def first_time(self, webhook_id: str) -> bool:
        if webhook_id in self._seen:
            self._seen.move_to_end(webhook_id)
            return False
        self._seen[webhook_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True
