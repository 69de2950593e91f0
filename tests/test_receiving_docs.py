"""docs/receiving.md's Python snippet, run as written against deliveries signed by the hub's
own signing code: a genuine one is accepted once with exact Decimals, a repeat is skipped, a
forged one raises."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from app.signing import new_secret, sign

DOC = Path(__file__).resolve().parent.parent / "docs" / "receiving.md"
BODY = b'{"parameters":{"invoice":{"totalGrossAmount":22.70}},"type":"t"}'


def snippet() -> dict[str, Any]:
    [code] = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def test_the_python_snippet_verifies_deduplicates_and_keeps_money_exact():
    receive = snippet()["receive"]
    secret, now = new_secret(), int(time.time())
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, "evt_1", now, BODY),
    }
    seen: set[str] = set()
    event = receive(secret, BODY, headers, seen)
    assert event["parameters"]["invoice"]["totalGrossAmount"] == Decimal("22.70")
    assert str(event["parameters"]["invoice"]["totalGrossAmount"]) == "22.70"
    assert receive(secret, BODY, headers, seen) is None  # the retry: skipped
    with pytest.raises(WebhookVerificationError):
        receive(secret, BODY.replace(b"22.70", b"2.70"), headers, seen)
