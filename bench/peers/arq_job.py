"""The arq peer: one job per delivery, posting with a shared httpx.AsyncClient."""

from __future__ import annotations

import os
from typing import Any

import httpx
from arq.connections import RedisSettings

from bench.peers.common import headers


async def startup(ctx: dict[str, Any]) -> None:
    ctx["client"] = httpx.AsyncClient(timeout=15)


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["client"].aclose()


async def deliver(ctx: dict[str, Any], url: str, msg_id: str, body: bytes) -> None:
    answer = await ctx["client"].post(url, content=body, headers=headers(msg_id, body))
    answer.raise_for_status()


class WorkerSettings:
    functions = [deliver]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(
        os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")
    )
    max_jobs = 64
    keep_result = 0
