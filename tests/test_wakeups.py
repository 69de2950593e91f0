"""Workers are woken by what other processes commit (PostgreSQL LISTEN/NOTIFY), not only by
their poll: a delivery stored by an API process is sent at once by an idle worker elsewhere."""

from __future__ import annotations

import pytest

from app.store.postgres import COPY_ROWS
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


async def test_a_bulk_batch_wakes_an_idle_worker_too(hub_factory, database_url: str):
    """A batch big enough for COPY commits in a transaction whose NOTIFY is sent with its
    COMMIT (one round trip): the idle worker elsewhere is woken by it all the same."""
    if database_url.startswith("sqlite"):
        pytest.skip("one process writes a SQLite file; it wakes its own worker in memory")
    api: HubClient = await hub_factory()
    await hub_factory(run_worker=True, poll_interval=3600.0)
    recorder = Recorder()
    async with Receiver(recorder.app, "/hook") as server:
        recorder.secret = (await api.endpoint(server.url))["secret"]
        first = await api.publish("t", {"n": 0})  # the worker is listening once this arrives
        await until(lambda: first["id"] in recorder.ids(), 20, what="the first delivery")
        items = [{"type": "t", "parameters": {"n": n}} for n in range(1, COPY_ROWS + 9)]
        answer = await api.http.post("/v1/events/batch", json={"items": items})
        ids = {r["result"]["id"] for r in answer.json()["results"]}
        await until(lambda: ids <= set(recorder.ids()), 20, what="the batch was delivered")
