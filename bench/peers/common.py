"""What both peers do per delivery: sign like billhook (Standard Webhooks) and POST."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

SECRET = base64.b64encode(b"bench-secret-bench-secret-bench!").decode()


def headers(msg_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    mac = hmac.new(
        base64.b64decode(SECRET), b"%s.%d.%s" % (msg_id.encode(), timestamp, body), hashlib.sha256
    )
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
    }
