"""Workers are woken by what other processes commit (PostgreSQL LISTEN/NOTIFY), not only by
their poll: a delivery stored by an API process is sent at once by an idle worker elsewhere."""

from __future__ import annotations

import pytest

from app.testing import Receiver
from tests.conftest import HubClient
from tests.test_e2e import Recorder
from tests.waiting import until


async def test_a_delivery_stored_by_another_process_wakes_an_idle_worker(
    hub_factory, database_url: str
):
    if database_url.startswith("sqlite"):
        pytest.skip("one process writes a SQLite file; it wakes its own worker in memory")
    api: HubClient = await hub_factory()  # stores, never sends
    await hub_factory(run_worker=True, poll_interval=3600.0)  # only a notification wakes it
    recorder = Recorder()
    async with Receiver(recorder.app, "/hook") as server:
        recorder.secret = (await api.endpoint(server.url))["secret"]
        # No race with the LISTEN being set up: once it is, the listener wakes the worker
        # once more, which then finds whatever was committed before.
        event = await api.publish("t", {"n": 1})
        await until(lambda: event["id"] in recorder.ids(), 20, what="the worker was woken")
