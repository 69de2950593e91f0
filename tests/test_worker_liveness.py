"""A dead worker is never silent: the process says so in one line and exits non-zero (so its
supervisor restarts it) instead of answering 202 to work nobody delivers; /healthz reports the
worker's liveness and how far behind the workers are."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import main as main_module
from app.main import create_app
from app.testing import FrozenClock
from app.worker import Worker
from tests.conftest import API_KEY, START_MS, HubClient, make_settings
from tests.processes import KEY, child_env
from tests.waiting import until


async def test_healthz_says_how_far_behind_the_workers_are(hub_factory):
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock)  # no worker in this process
    await hub.endpoint("http://127.0.0.1:9/x")
    quiet = (await hub.http.get("/healthz")).json()
    assert quiet == {"status": "ok", "worker": None, "oldest_due_age_s": 0.0}
    await hub.publish("t", {"n": 1})
    clock.advance(42)
    behind = (await hub.http.get("/healthz")).json()
    assert behind["oldest_due_age_s"] == 42.0


async def test_a_worker_that_dies_stops_the_process_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """In `serve` nothing watched the worker task: it could die and the API kept answering
    202. Now the death is logged once, /healthz answers 503, and the process is told to stop."""
    started = asyncio.Event()

    async def dies(self: Worker) -> None:
        started.set()
        raise RuntimeError("boom")

    signals: list[int] = []
    monkeypatch.setattr(Worker, "run", dies)
    monkeypatch.setattr(main_module.os, "kill", lambda pid, sig: signals.append(sig))
    app = create_app(make_settings(tmp_path, run_worker=True))
    async with app.router.lifespan_context(app):
        await started.wait()
        await until(lambda: _true(bool(signals)), 10)
        assert signals == [signal.SIGTERM]
        assert app.state.failure == "RuntimeError: boom"
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            health = await client.get("/healthz")
    assert health.status_code == 503 and health.json()["worker"]["running"] is False
    [line] = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "the background loops stopped (RuntimeError: boom)" in line.getMessage()


async def _true(value: bool) -> bool:
    return value


_DYING_SERVE = """
import sys
from app import worker

async def dies(self):
    raise RuntimeError("boom")

worker.Worker.run = dies
from app.cli import main
sys.argv = ["billhook", sys.argv[1]]
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("role", ["serve", "worker"])
async def test_a_process_exits_non_zero_when_its_worker_dies(tmp_path: Path, role: str):
    env = child_env(BILLHOOK_PORT="0", BILLHOOK_API_KEY=KEY,
                    BILLHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/h.db")  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _DYING_SERVE, role, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    said = err.decode()
    assert proc.returncode == 1, said
    assert said.count("the background loops stopped (RuntimeError: boom)") == 1, said
    assert "Traceback" not in said, said


async def test_a_running_worker_is_reported_alive(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, run_worker=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        headers: dict[str, Any] = {"authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://hub.test", headers=headers
        ) as client:
            health = (await client.get("/healthz")).json()
    assert health["status"] == "ok" and health["worker"]["running"] is True
    assert health["worker"]["last_turn_age_s"] < 60
