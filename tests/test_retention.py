"""Retention: webhook traffic older than BILLHOOK_RETENTION_DAYS goes, in small batches; billing
records, invoices and work still pending stay. Runs on a frozen clock."""

from __future__ import annotations

import pytest

from app import retention
from app.retention import RetentionService
from app.testing import FrozenClock, Receiver
from tests.conftest import START_MS, HubClient
from tests.test_billing import completion, post
from tests.test_e2e import Recorder
from tests.test_invoices import finalize, seller

DAY = 86_400


async def _status(hub: HubClient, path: str) -> int:
    return (await hub.http.get(path)).status_code


async def test_old_traffic_is_purged_and_billing_and_pending_work_kept(
    hub_factory, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(retention, "BATCH", 2)  # several batches per table
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retry_schedule="40d", retention_days=30)
    recorder = Recorder()
    async with Receiver(recorder.app, "/hook") as server:
        recorder.secret = (await hub.endpoint(server.url, filter={"customerNumber": "C-1"}))[
            "secret"
        ]
        await hub.endpoint("http://127.0.0.1:9/down", filter={"customerNumber": "down"})
        old = [(await hub.publish("t", {"customerNumber": "C-1", "n": n}))["id"] for n in range(5)]
        billed = await post(hub, "/v1/usage-completions", completion())
        assert billed.status_code == 202, billed.text
        stuck = (await hub.publish("t", {"customerNumber": "down"}))["id"]
        await seller(hub)
        _, [invoice] = await finalize(hub)
        await hub.drain()  # everything delivered but `stuck`, which retries in 40 days

        clock.advance(31 * DAY)
        recent = (await hub.publish("t", {"customerNumber": "C-1", "n": "new"}))["id"]
        await hub.drain()
        removed = await RetentionService(hub.hub.store, clock, 30).purge()

    assert removed > 5
    assert [await _status(hub, f"/v1/events/{e}") for e in old] == [404] * 5
    kept = (await hub.http.get(f"/v1/events/{billed.json()['event_id']}")).json()
    assert kept["type"] == "subscriptions/billingInformationAvailable"
    assert await _status(hub, f"/v1/invoices/{invoice['number']}") == 200
    assert await _status(hub, f"/v1/events/{invoice['event_id']}") == 200  # invoices stay
    pending = (await hub.http.get(f"/v1/events/{stuck}")).json()
    assert [d["status"] for d in pending["deliveries"]] == ["pending"]
    fresh = (await hub.http.get(f"/v1/events/{recent}")).json()
    [delivery] = fresh["deliveries"]
    attempts = (await hub.http.get(f"/v1/deliveries/{delivery['id']}/attempts")).json()
    assert len(attempts["data"]) == 1


async def test_nothing_younger_than_the_retention_period_is_purged(hub_factory):
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retention_days=30)
    await hub.endpoint("http://127.0.0.1:9/x")
    event = (await hub.publish("t", {"n": 1}))["id"]
    await hub.drain()
    clock.advance(29 * DAY)
    assert await RetentionService(hub.hub.store, clock, 30).purge() == 0
    assert await _status(hub, f"/v1/events/{event}") == 200


async def test_the_periodic_job_runs_on_every_backend(hub_factory):
    """The job the worker runs once a minute (weeks made ahead on PostgreSQL, then the purge)
    completes on SQLite too, where there are no partitions to make."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retention_days=30)
    unheard = (await hub.publish("t", {"n": 1}))["id"]  # no endpoint: nothing to deliver
    clock.advance(40 * DAY)
    job = RetentionService(hub.hub.store, clock, 30)
    assert await job.run_due() == 1  # before: a KeyError on SQLite (no partitions to make)
    assert await _status(hub, f"/v1/events/{unheard}") == 404
