"""subscribers/verify.py, the helper merchants copy: signatures, freshness, de-duplication."""

from __future__ import annotations

import time

import pytest

from app.signing import new_secret, signature_header
from subscribers.verify import Deduplicator, Verifier, WebhookVerificationError

SECRET = new_secret()


def _headers(body: bytes, ts: int, secret: str = SECRET, msg_id: str = "evt_1") -> dict[str, str]:
    return {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(ts),
        "Webhook-Signature": signature_header([secret], msg_id, ts, body),
    }


def test_accepts_a_genuine_delivery_and_returns_its_id():
    now = int(time.time())
    assert Verifier(SECRET).verify(b"{}", _headers(b"{}", now)) == "evt_1"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h: h.pop("Webhook-Signature"), "missing"),
        (lambda h: h.update({"Webhook-Timestamp": "soon"}), "unix seconds"),
        (lambda h: h.update({"Webhook-Id": "evt_2"}), "no signature"),
    ],
)
def test_rejects_broken_headers(mutate, message: str):
    headers = _headers(b"{}", int(time.time()))
    mutate(headers)
    with pytest.raises(WebhookVerificationError, match=message):
        Verifier(SECRET).verify(b"{}", headers)


def test_rejects_stale_and_future_timestamps():
    """Replayed captures older than five minutes are refused, as are clocks far ahead."""
    now = time.time()
    for skew in (-301, 301):
        ts = int(now + skew)
        with pytest.raises(WebhookVerificationError, match="tolerance"):
            Verifier(SECRET).verify(b"{}", _headers(b"{}", ts), now=now)


def test_several_secrets_during_rotation():
    old, new = new_secret(), new_secret()
    now = int(time.time())
    verifier = Verifier([new, old])
    assert verifier.verify(b"{}", _headers(b"{}", now, secret=old)) == "evt_1"
    assert verifier.verify(b"{}", _headers(b"{}", now, secret=new)) == "evt_1"


def test_deduplicator_is_bounded():
    """The in-memory de-duplicator keeps the newest ids only, so memory stays flat."""
    dedupe = Deduplicator(capacity=2)
    assert dedupe.first_time("a") and dedupe.first_time("b")
    assert not dedupe.first_time("a")
    assert dedupe.first_time("c")  # evicts b, the least recently seen
    assert dedupe.first_time("b")
