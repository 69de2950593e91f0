"""Replays: one event again, and paced, durable jobs that recover or backfill an endpoint."""

from __future__ import annotations

from typing import Any

from app import replay_runner
from app.testing import FrozenClock
from tests.conftest import START_MS, HubClient
from tests.test_e2e import Recorder

SINCE = "2026-11-01T00:00:00Z"


async def _receiver(hub: HubClient, server: Any, recorder: Recorder, **fields: Any) -> str:
    created = await hub.endpoint(server.url, **fields)
    recorder.secret = created["secret"]
    endpoint_id: str = created["id"]
    return endpoint_id


async def _replay_of_stored(hub: HubClient, clock: FrozenClock, events: int, rate: int) -> str:
    """`events` stored for an endpoint that cannot be reached, then a replay of all of them."""
    endpoint = await hub.endpoint("http://127.0.0.1:9/x", event_types=["t"])
    for n in range(events):
        await hub.publish("t", {"n": n})
    clock.advance(1)
    request = {"endpoint_id": endpoint["id"], "since": SINCE, "status": "all", "rate_per_s": rate}
    replay_id: str = (await hub.http.post("/v1/replays", json=request)).json()["id"]
    return replay_id


async def _run_replays(hub: HubClient, replay_id: str) -> dict[str, Any]:
    """One periodic run, then the job's state."""
    await hub.hub.periodic.run_once()
    state: dict[str, Any] = (await hub.http.get(f"/v1/replays/{replay_id}")).json()
    return state


async def test_replay_one_event_to_every_endpoint_matching_now(hub: HubClient):
    """A new endpoint that matches the event gets it too; the webhook-id is the event id."""
    from app.testing import Receiver

    first, second = Recorder(), Recorder()
    async with Receiver(first.app, "/hook") as s1, Receiver(second.app, "/hook") as s2:
        await _receiver(hub, s1, first, event_types=["t"])
        event = await hub.publish("t", {"n": 1})
        await hub.drain()
        await _receiver(hub, s2, second, event_types=["t"])
        replayed = await hub.http.post(f"/v1/events/{event['id']}/replay", json={})
        assert replayed.status_code == 202
        assert len(replayed.json()["deliveries"]) == 2
        await hub.drain()
    assert first.ids() == [event["id"]] * 2
    assert second.ids() == [event["id"]]
    detail = (await hub.http.get(f"/v1/events/{event['id']}")).json()
    assert sorted(d["trigger"] for d in detail["deliveries"]) == ["replay", "replay", "scheduled"]


async def test_replay_one_event_to_one_endpoint(hub: HubClient, receiver):
    app, server = receiver
    endpoint = await hub.endpoint(server.url)
    app.set_secret(endpoint["secret"])
    other = await hub.endpoint("http://127.0.0.1:9/other")
    event = await hub.publish("t", {})
    answer = await hub.http.post(
        f"/v1/events/{event['id']}/replay", json={"endpoint_id": endpoint["id"]}
    )
    assert [d["endpoint_id"] for d in answer.json()["deliveries"]] == [endpoint["id"]]
    assert other["id"] not in {d["endpoint_id"] for d in answer.json()["deliveries"]}
    missing = await hub.http.post(f"/v1/events/{event['id']}/replay", json={"endpoint_id": "ep_x"})
    assert missing.status_code == 404
    assert (await hub.http.post("/v1/events/evt_nope/replay", json={})).status_code == 404


async def test_backfill_an_endpoint_created_after_the_events(hub_factory):
    """status=all sends a new endpoint every event of the window it subscribes to."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock)
    ids = [(await hub.publish("t", {"n": n, "customerNumber": "C1"}))["id"] for n in range(7)]
    await hub.publish("other", {})  # not subscribed: not replayed
    await hub.publish("t", {"customerNumber": "C2"})  # outside the filter: not replayed
    clock.advance(1)
    from app.testing import Receiver

    recorder = Recorder()
    async with Receiver(recorder.app, "/hook") as server:
        endpoint_id = await _receiver(
            hub, server, recorder, event_types=["t"], filter={"customerNumber": "C1"}
        )
        request = {"endpoint_id": endpoint_id, "since": "2026-11-17", "status": "all"}
        dry = await hub.http.post("/v1/replays", json=request | {"dry_run": True})
        assert dry.status_code == 200 and dry.json() == {"matched": 7}
        assert (await hub.http.get("/v1/replays")).json()["data"] == []  # a dry run changes nothing
        started = await hub.http.post("/v1/replays", json=request)
        assert started.status_code == 202
        replay = started.json()
        assert (replay["status"], replay["matched"], replay["enqueued"]) == ("running", 7, 0)
        await hub.hub.periodic.run_once()
        clock.advance(1)  # each replayed delivery is due at its paced moment (2 ms apart)
        await hub.drain()
    assert sorted(recorder.ids()) == sorted(ids)
    done = (await hub.http.get(f"/v1/replays/{replay['id']}")).json()
    assert (done["status"], done["enqueued"], done["succeeded"], done["failed"]) == (
        "done",
        7,
        7,
        0,
    )


async def test_replay_of_failures_resends_only_what_never_arrived(hub_factory):
    """status=failed re-sends events whose deliveries to the endpoint ended without success."""
    from app.testing import Receiver

    hub: HubClient = await hub_factory(retry_schedule="0s")  # two attempts, then failed
    recorder = Recorder(statuses=[500] * 4)  # both of the first two events exhaust theirs
    async with Receiver(recorder.app, "/hook") as server:
        endpoint_id = await _receiver(hub, server, recorder, event_types=["t"])
        lost = [(await hub.publish("t", {"n": n}))["id"] for n in range(2)]
        await hub.drain()
        arrived = (await hub.publish("t", {"n": 9}))["id"]
        await hub.drain()
        request = {"endpoint_id": endpoint_id, "since": SINCE, "status": "failed"}
        assert (await hub.http.post("/v1/replays", json=request | {"dry_run": True})).json() == {
            "matched": 2
        }
        await hub.http.post("/v1/replays", json=request)
        await hub.hub.periodic.run_once()
        await hub.drain()
    delivered = [r["headers"]["webhook-id"] for r in recorder.requests[4:]]
    assert sorted(delivered) == sorted([arrived, *lost])


async def test_replay_is_paced_by_rate_per_s(hub_factory):
    """At 10/s the worker enqueues 10, then nothing until a second has passed."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock)
    replay_id = await _replay_of_stored(hub, clock, 25, rate=10)
    assert (await _run_replays(hub, replay_id))["enqueued"] == 10
    assert (await _run_replays(hub, replay_id))["enqueued"] == 10  # not due yet: the pace holds
    clock.advance(1)
    assert (await _run_replays(hub, replay_id))["enqueued"] == 20
    clock.advance(1)
    assert (await _run_replays(hub, replay_id))["enqueued"] == 25


async def test_a_large_replay_is_streamed_in_batches(hub_factory, monkeypatch):
    """A run enqueues a bounded number of bounded batches, whatever the window holds: memory
    stays flat, and the job resumes from its cursor at the next run."""
    monkeypatch.setattr(replay_runner, "BATCH", 10)
    monkeypatch.setattr(replay_runner, "MAX_SLICES", 3)
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock)
    replay_id = await _replay_of_stored(hub, clock, 45, rate=100_000)
    assert (await _run_replays(hub, replay_id))["enqueued"] == 30
    assert (await _run_replays(hub, replay_id))["enqueued"] == 45


async def test_replayed_deliveries_are_due_evenly_at_the_pace(hub_factory):
    """At 100/s, a run's deliveries are due 10 ms apart: the worker sends them evenly rather
    than in a burst that would hold up live traffic."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock)
    for n in range(5):
        await hub.publish("t", {"n": n})
    endpoint = await hub.endpoint("http://127.0.0.1:9/x", event_types=["t"])  # a backfill
    clock.advance(1)
    request = {"endpoint_id": endpoint["id"], "since": SINCE, "status": "all", "rate_per_s": 100}
    await hub.http.post("/v1/replays", json=request)
    await hub.hub.periodic.run_once()
    now = clock.now_ms()
    sent = []
    for step in range(5):
        jobs = await hub.hub.store.deliveries.claim(now + 10 * step, now + 60_000, 100)
        sent.append(len(jobs))
    assert sent == [1, 1, 1, 1, 1]


async def test_cancel_stops_enqueueing_and_cancels_what_is_pending(hub_factory):
    """A cancelled job enqueues nothing more, its pending deliveries are cancelled, and a
    second cancel is refused."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock)
    replay_id = await _replay_of_stored(hub, clock, 30, rate=10)
    await hub.hub.periodic.run_once()
    cancelled = await hub.http.post(f"/v1/replays/{replay_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    clock.advance(5)
    state = await _run_replays(hub, replay_id)
    assert (state["status"], state["enqueued"], state["pending"]) == ("cancelled", 10, 0)
    again = await hub.http.post(f"/v1/replays/{replay_id}/cancel")
    assert again.status_code == 422


async def test_a_replay_that_enqueued_everything_can_be_cancelled_while_it_delivers(
    hub_factory,
):
    """Shown `running` with pending deliveries once everything is enqueued, it used to answer
    422 "the replay is not running" to a cancel; a finished one is refused, saying so."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock)
    replay_id = await _replay_of_stored(hub, clock, 5, rate=100_000)
    state = await _run_replays(hub, replay_id)
    assert (state["status"], state["enqueued"], state["pending"]) == ("running", 5, 5)
    cancelled = await hub.http.post(f"/v1/replays/{replay_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["pending"]) == ("cancelled", 0)
    again = await hub.http.post(f"/v1/replays/{replay_id}/cancel")
    assert again.status_code == 422 and "cancelled" in again.text


async def test_a_replay_resumes_where_it_was_after_a_restart(hub_factory):
    """The cursor is stored with each batch: a new hub goes on from there, nothing twice."""
    clock = FrozenClock(START_MS)
    first: HubClient = await hub_factory(clock=clock)
    replay_id = await _replay_of_stored(first, clock, 25, rate=10)
    await first.hub.periodic.run_once()
    second: HubClient = await hub_factory(clock=clock)
    for _ in range(3):
        clock.advance(1)
        state = await _run_replays(second, replay_id)
    assert (state["enqueued"], state["matched"]) == (25, 25)
    rows = await second.hub.store.db.fetch("replay_progress", {"id": replay_id})
    assert sum(r["n"] for r in rows) == 25


async def test_bad_replay_requests(hub: HubClient):
    """Each malformed replay request is a 4xx naming the field, and no job is created."""
    endpoint = await hub.endpoint("http://127.0.0.1:9/x")
    cases = [
        ({"endpoint_id": endpoint["id"], "since": "yesterday"}, 422, "since"),
        ({"endpoint_id": endpoint["id"], "since": SINCE, "status": "some"}, 422, "status"),
        ({"endpoint_id": endpoint["id"], "since": SINCE, "rate_per_s": 0}, 422, "rate_per_s"),
        ({"since": SINCE}, 422, "endpoint_id"),
        ({"endpoint_id": "ep_missing", "since": SINCE}, 404, None),
    ]
    for body, status, field in cases:
        response = await hub.http.post("/v1/replays", json=body)
        assert response.status_code == status, body
        if field:
            assert any(field in d["loc"] for d in response.json()["error"]["details"]), body
    assert (await hub.http.get("/v1/replays/rp_missing")).status_code == 404
    assert (await hub.http.get("/v1/replays")).json()["data"] == []


async def test_a_replay_of_what_failed_counts_and_sends_what_the_circuit_holds(hub_factory):
    """The README's outage demo: with the default schedule nothing has failed for good yet —
    the endpoint is failing and its circuit holds the deliveries. The dry run said 0 and the
    progress bar stayed at 0/1; both now count the held deliveries, which go out through the
    probe the replay sends at once."""
    from app.testing import Receiver
    from tests.test_endpoint_health import Switch

    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retry_schedule="5s,5m,30m,2h,5h,10h,10h")
    switch = Switch(503)
    async with Receiver(switch.app, "/hook") as server:
        endpoint = await hub.endpoint(server.url, event_types=["t"])
        for n in range(7):
            await hub.publish("t", {"n": n})
        await hub.drain()
        health = (await hub.http.get(f"/v1/endpoints/{endpoint['id']}/health")).json()
        assert (health["status"], health["held"]) == ("failing", 7)
        clock.advance(1)
        request = {"endpoint_id": endpoint["id"], "since": SINCE, "dry_run": True}
        assert (await hub.http.post("/v1/replays", json=request)).json() == {"matched": 7}

        switch.status = 200
        started = await hub.http.post("/v1/replays", json=request | {"dry_run": False})
        assert started.json()["matched"] == 7
        calls = switch.calls
        state = await _run_replays(hub, started.json()["id"])
        await hub.drain()
        state = (await hub.http.get(f"/v1/replays/{started.json()['id']}")).json()
    assert (state["status"], state["succeeded"], state["pending"]) == ("done", 7, 0)
    assert switch.calls == calls + 7  # each once: held deliveries are not duplicated


async def test_cancelling_a_replay_keeps_the_held_deliveries_it_took_in(hub_factory):
    """What the circuit held belongs to live traffic: cancelling the replay that counted it
    only lets go of it, it does not cancel it."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retry_schedule="1h")
    endpoint = await hub.endpoint("http://127.0.0.1:9/x", event_types=["t"])
    for n in range(6):
        await hub.publish("t", {"n": n})
    await hub.drain()
    clock.advance(1)
    request = {"endpoint_id": endpoint["id"], "since": SINCE}
    replay_id = (await hub.http.post("/v1/replays", json=request)).json()["id"]
    await hub.http.post(f"/v1/replays/{replay_id}/cancel")
    health = (await hub.http.get(f"/v1/endpoints/{endpoint['id']}/health")).json()
    assert health["pending"] == 6
