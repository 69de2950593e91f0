"""The benchmark receiver: plain ASGI under uvicorn, as cheap per request as a receiver gets.

POST /ok/<n>    200, records the webhook-id's arrival time (unix seconds)
POST /fail/<n>  500
POST /hang/<n>  never answers (the sender's timeout ends it)
GET  /stats     {"count", "first", "last", "ids"?} — with ?ids=1 the arrival time per id
POST /reset     forget everything

    python -m bench.receiver --port 9300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

_arrivals: dict[str, float] = {}
_count = 0
_hung: list[asyncio.Future[None]] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _count
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    path: str = scope["path"]
    await _drain(receive)
    if path.startswith("/ok/"):
        _count += 1
        for name, value in scope["headers"]:
            if name == b"webhook-id":
                _arrivals.setdefault(value.decode(), time.time())
        await _answer(send, 200, b"ok")
    elif path.startswith("/fail/"):
        await _answer(send, 500, b"failing on purpose")
    elif path.startswith("/hang/"):
        waiter = asyncio.get_running_loop().create_future()
        _hung.append(waiter)
        await waiter
    elif path == "/stats":
        await _answer(send, 200, json.dumps(_stats(b"ids=1" in scope["query_string"])).encode())
    elif path == "/reset":
        _arrivals.clear()
        _count = 0
        await _answer(send, 200, b"reset")
    else:
        await _answer(send, 404, b"")


def _stats(with_ids: bool) -> dict[str, Any]:
    times = _arrivals.values()
    stats: dict[str, Any] = {
        "count": _count,
        "unique": len(_arrivals),
        "first": min(times, default=None),
        "last": max(times, default=None),
    }
    if with_ids:
        stats["ids"] = _arrivals
    return stats


async def _drain(receive: Any) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        "bench.receiver:app",
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=60,
        timeout_graceful_shutdown=1,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
