"""A reference webhook receiver: verify, de-duplicate, store. A merchant's starting point.

    python -m subscribers.receiver --port 9000 --secret whsec_... [--db received.db]

POST /webhooks  verifies the signature (401 if it fails), stores the event once per
                webhook-id (a repeat answers 200 with "duplicate": true), answers 200 quickly.
GET  /received  what arrived, newest first, each payload exactly as it was sent.

Depends on Starlette and uvicorn only; nothing from billhook.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from subscribers.verify import Verifier, WebhookVerificationError, parse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    webhook_id   TEXT PRIMARY KEY,          -- the de-duplication key
    event_type   TEXT NOT NULL,
    body         BLOB NOT NULL,
    received_at  REAL NOT NULL,
    times_seen   INTEGER NOT NULL DEFAULT 1
)
"""


class Inbox:
    """Received events in SQLite; the primary key on webhook_id makes de-duplication durable."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def add(self, webhook_id: str, event_type: str, body: bytes) -> bool:
        """True the first time this webhook id arrives."""
        cursor = self._db.execute(
            "INSERT INTO received (webhook_id, event_type, body, received_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (webhook_id) DO UPDATE SET times_seen = times_seen + 1 "
            "RETURNING times_seen",
            (webhook_id, event_type, body, time.time()),
        )
        return bool(cursor.fetchone()[0] == 1)

    def ids(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT webhook_id FROM received")}

    def arrived(self) -> list[str]:
        """Webhook ids in the order they first arrived."""
        return [
            row[0] for row in self._db.execute("SELECT webhook_id FROM received ORDER BY rowid")
        ]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM received").fetchone()[0])

    def duplicates(self) -> dict[str, int]:
        """webhook id → times seen, for the ids that arrived more than once."""
        rows = self._db.execute("SELECT webhook_id, times_seen FROM received WHERE times_seen > 1")
        return dict(rows.fetchall())

    def body(self, webhook_id: str) -> bytes | None:
        row = self._db.execute("SELECT body FROM received WHERE webhook_id = ?", (webhook_id,))
        found = row.fetchone()
        return bytes(found[0]) if found else None

    def latest(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest events, payloads parsed with amounts as Decimal (verify.parse)."""
        return [
            {
                "webhook_id": webhook_id,
                "type": event_type,
                "payload": parse(body),
                "received_at": received_at,
                "times_seen": seen,
            }
            for webhook_id, event_type, body, received_at, seen in self._rows(limit)
        ]

    def latest_json(self, limit: int = 50) -> bytes:
        """The newest events as JSON, each payload spliced in as the bytes that arrived: the
        money shows exactly as billhook sent it (22.70, not 22.7)."""
        items = [
            b'{"webhook_id": %s, "type": %s, "received_at": %s, "times_seen": %d, "payload": %s}'
            % (json.dumps(wid).encode(), json.dumps(kind).encode(), repr(at).encode(), n, body)
            for wid, kind, body, at, n in self._rows(limit)
        ]
        return b'{"data": [' + b", ".join(items) + b"]}"

    def _rows(self, limit: int) -> list[tuple[str, str, bytes, float, int]]:
        rows = self._db.execute(
            "SELECT webhook_id, event_type, body, received_at, times_seen FROM received "
            "ORDER BY received_at DESC LIMIT ?",
            (limit,),
        )
        return [(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]


class WebhookReceiver:
    """The receiving application; `secret` may be set after start (register, then configure)."""

    def __init__(self, secret: str | None = None, inbox: Inbox | None = None) -> None:
        self.inbox = inbox or Inbox()
        self.verifier: Verifier | None = Verifier(secret) if secret else None
        self.app = Starlette(
            routes=[
                Route("/webhooks", self.receive, methods=["POST"]),
                Route("/received", self.received, methods=["GET"]),
            ]
        )

    def set_secret(self, *secrets: str) -> None:
        """Several secrets while one is rotated out."""
        self.verifier = Verifier(secrets)

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        if self.verifier is None:
            return JSONResponse({"error": "receiver has no secret configured"}, status_code=503)
        try:
            webhook_id = self.verifier.verify(body, request.headers)
        except WebhookVerificationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        try:
            event_type = str(parse(body)["type"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "body is not a billhook envelope"}, status_code=400)
        first = self.inbox.add(webhook_id, event_type, body)
        return JSONResponse({"received": webhook_id, "duplicate": not first})

    async def received(self, request: Request) -> Response:
        return Response(self.inbox.latest_json(), media_type="application/json")


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="billhook reference webhook receiver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", required=True, help="the endpoint's whsec_... secret")
    parser.add_argument("--db", default="received.db", help="SQLite file for received events")
    args = parser.parse_args()
    receiver = WebhookReceiver(args.secret, Inbox(args.db))
    print(f"receiver on http://{args.host}:{args.port}/webhooks (stored in {args.db})")
    uvicorn.run(receiver.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
