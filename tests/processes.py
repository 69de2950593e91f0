"""Real hub processes for tests: `billhook serve | api | worker` on a database, with the
BILLHOOK_* settings a test needs; stopped (or found killed) at the end."""

from __future__ import annotations

import asyncio
import os
import sys
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

KEY = "bh_process_test_key"
SECRET_KEY = "bsk_test_secret_key_of_32_characters_or_more"  # as the in-process hubs
FAST = {
    "BILLHOOK_EGRESS_ALLOW": "127.0.0.0/8",
    "BILLHOOK_RETRY_SCHEDULE": "1s,1s,1s",
    "BILLHOOK_REQUEST_TIMEOUT": "2s",
    "BILLHOOK_CONNECT_TIMEOUT": "1s",
    "BILLHOOK_POLL_INTERVAL": "100ms",
}


async def declare(api: httpx.AsyncClient, name: str = "t") -> None:
    """The made-up type the tests publish is the tenant's own (an unknown type is refused)."""
    answer = await api.post("/v1/event-types", json={"name": name})
    assert answer.status_code in (201, 409), answer.text


def child_env(**variables: str) -> dict[str, str]:
    """The environment of a `billhook` child process: this one's without any BILLHOOK_*
    variable, plus the secret key every hub needs, plus `variables` (an empty value unsets)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLHOOK_")}
    env |= {"BILLHOOK_SECRET_KEY": SECRET_KEY, **variables}
    return {k: v for k, v in env.items() if v != ""}


@dataclass
class HubProcess:
    proc: asyncio.subprocess.Process
    url: str | None  # None for a worker: it serves nothing
    said: list[bytes]  # what it wrote to stderr so far (logs)


@asynccontextmanager
async def hub_process(
    database_url: str, role: str = "serve", **overrides: str
) -> AsyncIterator[HubProcess]:
    """`billhook <role>` on `database_url` and a free port; `overrides`: more BILLHOOK_ vars."""
    env = child_env(
        **{
            "BILLHOOK_DATABASE_URL": database_url,
            "BILLHOOK_PORT": "0",
            "BILLHOOK_API_KEY": KEY,
            **FAST,
            **overrides,
        }
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", role, env=env, stderr=PIPE, stdout=DEVNULL
    )
    drain = None
    try:
        url = await asyncio.wait_for(_ready(proc), timeout=30)
        hub = HubProcess(proc, url, [])
        drain = asyncio.create_task(_drain(proc, hub.said))  # a full pipe would block the hub
        yield hub
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
        if drain is not None:
            await drain


async def _drain(proc: asyncio.subprocess.Process, said: list[bytes]) -> None:
    assert proc.stderr is not None
    while line := await proc.stderr.readline():
        said.append(line)


async def _ready(proc: asyncio.subprocess.Process) -> str | None:
    """The URL once the process serves; None once a worker runs."""
    assert proc.stderr is not None
    said = ""
    while line := (await proc.stderr.readline()).decode():
        said += line
        if "serving on " in line:
            return line.split("serving on ", 1)[1].strip()
        if "billhook running" in line:
            return None
    raise AssertionError(f"the hub exited with {await proc.wait()} before it ran:\n{said}")
