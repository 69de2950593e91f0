"""Driving the console over HTTP as a browser would: cookies kept, each form's CSRF token read
from the page that carries the form."""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.applications import Starlette

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class ConsoleBrowser:
    def __init__(self, app: Starlette) -> None:
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://hub.test", follow_redirects=False
        )
        self.csrf = ""

    async def __aenter__(self) -> ConsoleBrowser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def get(self, path: str, **params: Any) -> httpx.Response:
        response = await self.http.get(path, params=params)
        if found := _CSRF.search(response.text):
            self.csrf = found.group(1)
        return response

    async def post(
        self, path: str, data: dict[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        """A form sent with the CSRF token the last page carried (unless the data has one); a
        page answering with a form (a refused sign-in) carries the next one."""
        response = await self.http.post(path, data={"csrf": self.csrf, **(data or {})}, **kw)
        if found := _CSRF.search(response.text):
            self.csrf = found.group(1)
        return response

    async def sign_in(self, key: str) -> httpx.Response:
        await self.get("/console/sign-in")
        response = await self.post("/console/sign-in", {"key": key})
        await self.get("/console/")
        return response

    async def use_link(self, url: str) -> httpx.Response:
        path = httpx.URL(url).path
        await self.get(path)
        response = await self.post(path)
        await self.get("/console/")
        return response
