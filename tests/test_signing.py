"""Standard Webhooks signing: our signatures verify with the public library, and rotation works."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.signing import new_secret, sign, signature_header, verify

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body"),
    [
        ("evt_1", 1_700_000_000, b'{"parameters":{},"type":"x"}'),
        ("evt_01m7yt", 1_795_000_000, '{"a":"Münster","n":11.99}'.encode()),
        ("msg_with.dots", 1, b""),
    ],
)
def test_signature_matches_the_standard_webhooks_library(msg_id: str, timestamp: int, body: bytes):
    """sign() produces exactly what the reference implementation computes for the same input."""
    expected = Webhook(SECRET).sign(
        msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body.decode()
    )
    assert sign(SECRET, msg_id, timestamp, body) == expected


def test_library_verifies_our_headers():
    """A receiver using standardwebhooks accepts what the hub sends."""
    body = b'{"parameters":{"x":1},"type":"t"}'
    now = int(time.time())
    headers = {
        "webhook-id": "evt_abc",
        "webhook-timestamp": str(now),
        "webhook-signature": signature_header([SECRET], "evt_abc", now, body),
    }
    assert Webhook(SECRET).verify(body, headers) == {"parameters": {"x": 1}, "type": "t"}


def test_rotation_header_carries_both_signatures_and_each_secret_verifies():
    """During the 24 h overlap a receiver on the old secret and one on the new both verify."""
    old, new = new_secret(), new_secret()
    body, now = b"{}", int(time.time())
    header = signature_header([new, old], "evt_1", now, body)
    assert len(header.split(" ")) == 2
    for secret in (old, new):
        headers = {
            "webhook-id": "evt_1",
            "webhook-timestamp": str(now),
            "webhook-signature": header,
        }
        Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(
            body,
            {"webhook-id": "evt_1", "webhook-timestamp": str(now), "webhook-signature": header},
        )


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ({}, True),
        ({"body": b'{"x":2}'}, False),
        ({"msg_id": "evt_other"}, False),
        ({"timestamp": 1_700_000_001}, False),
    ],
)
def test_verify_rejects_any_tampering(change: dict[str, object], valid: bool):
    """The signature covers id, timestamp and body: changing any one of them breaks it."""
    original = {"msg_id": "evt_1", "timestamp": 1_700_000_000, "body": b'{"x":1}'}
    header = sign(SECRET, **original)  # type: ignore[arg-type]
    checked = {**original, **change}
    assert verify(SECRET, header=header, **checked) is valid  # type: ignore[arg-type]


def test_new_secret_has_32_random_bytes():
    """Secrets are whsec_ + base64 of 32 bytes, and never repeat."""
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != new_secret()
