"""Queue ingest's dead letters: the messages it could never accept, newest first, each with the
error that refused it (the same error the HTTP route would have answered)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.access import Session
from app.console.guard import viewing
from app.console.render import page
from app.hub import Hub

PAGE_SIZE = 50


@viewing
async def dead_letters(request: Request, hub: Hub, found: Session) -> Response:
    cursor = request.query_params.get("cursor") or None
    items = await hub.dead_letters.page(found.tenant, cursor, PAGE_SIZE + 1)
    more = items[PAGE_SIZE - 1].id if len(items) > PAGE_SIZE else None
    return page(request, found, "dead_letters.html", letters=items[:PAGE_SIZE], next_cursor=more)
