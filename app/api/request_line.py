"""The request line's text, checked before any route (hot, API or console) sees it.

A path or query string holding a control character (NUL, ESC, DEL …, percent-encoded or not)
is refused with a 400: no id, cursor or search term of billhook contains one, and PostgreSQL's
text cannot hold NUL, so letting it through would turn a lookup into a 500.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from app import jsoncodec
from app.errors import BadRequest

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


class RequestLine:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_control(scope):
            error = BadRequest("the path or query holds a control character")
            body = jsoncodec.dumps(error.body())
            headers = [(b"content-type", b"application/json"),
                       (b"content-length", str(len(body)).encode())]  # fmt: skip
            await send({"type": "http.response.start", "status": error.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _has_control(scope: Scope) -> bool:
    path: str = scope["path"]
    query: bytes = scope["query_string"]
    return bool(
        _CONTROL.search(path.encode("utf-8", "surrogateescape"))
        or (query and _CONTROL.search(unquote_to_bytes(query)))
    )
