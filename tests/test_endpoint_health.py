"""Endpoint health end to end: circuit, probes, recovery, auto-disable, 410, operational events.
Day-scale rules run on a frozen clock, never on sleeps."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.testing import FrozenClock, Receiver
from tests.conftest import START_MS, HubClient
from tests.test_e2e import Recorder

OPERATIONAL = [
    "endpoint.failing",
    "endpoint.recovered",
    "endpoint.disabled",
    "message.attempt.exhausted",
]


class Switch:
    """A receiver that answers a chosen status until switched."""

    def __init__(self, status: int = 503) -> None:
        self.status = status
        self.calls = 0
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.calls += 1
        return PlainTextResponse("switch", status_code=self.status)


async def _monitor(hub: HubClient, server: Receiver, recorder: Recorder) -> None:
    """An endpoint subscribed to the operational events only."""
    recorder.secret = (await hub.endpoint(server.url, event_types=OPERATIONAL))["secret"]


def _types(recorder: Recorder) -> list[str]:
    return [r["payload"]["type"] for r in recorder.requests]


async def _health(hub: HubClient, endpoint_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = (await hub.http.get(f"/v1/endpoints/{endpoint_id}/health")).json()
    return answer


async def test_failing_endpoint_is_held_probed_once_per_step_and_recovers(hub_factory):
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retry_schedule="5s,5m,30m,2h,5h,10h,10h")
    switch, monitor = Switch(503), Recorder()
    async with Receiver(switch.app, "/hook") as broken, Receiver(monitor.app, "/hook") as watch:
        await _monitor(hub, watch, monitor)
        endpoint = await hub.endpoint(broken.url, event_types=["t"])
        for n in range(5):
            await hub.publish("t", {"n": n})
        await hub.drain()  # five first attempts fail: the circuit opens
        state = await _health(hub, endpoint["id"])
        assert (state["status"], state["consecutive_failures"], state["held"]) == ("failing", 5, 5)
        assert _types(monitor) == ["endpoint.failing"]
        listed = (await hub.http.get(f"/v1/endpoints/{endpoint['id']}")).json()
        assert listed["status"] == "failing"

        for n in range(5, 20):  # while failing, new events are stored held: no requests
            await hub.publish("t", {"n": n})
        calls = switch.calls
        await hub.drain()
        assert switch.calls == calls
        assert (await _health(hub, endpoint["id"]))["held"] == 20

        clock.advance(5)  # the first probe step: exactly one request
        await hub.hub.periodic.run_once()
        await hub.drain()
        assert switch.calls == calls + 1
        clock.advance(60)  # the next step is 5 min away: nothing yet
        await hub.hub.periodic.run_once()
        await hub.drain()
        assert switch.calls == calls + 1

        switch.status = 200
        clock.advance(300)
        await hub.hub.periodic.run_once()
        await hub.drain()  # the probe succeeds: everything held goes out
        assert switch.calls == calls + 1 + 20
        state = await _health(hub, endpoint["id"])
        assert (state["status"], state["held"], state["pending"]) == ("active", 0, 0)
        assert _types(monitor) == ["endpoint.failing", "endpoint.recovered"]
        recovered = monitor.requests[1]["payload"]["parameters"]
        assert recovered["endpointId"] == endpoint["id"] and recovered["failingSince"] == START_MS


async def test_five_days_of_failures_disable_the_endpoint(hub_factory):
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retry_schedule="1m,1h,10h")
    switch, monitor = Switch(500), Recorder()
    async with Receiver(switch.app, "/hook") as broken, Receiver(monitor.app, "/hook") as watch:
        await _monitor(hub, watch, monitor)
        endpoint = await hub.endpoint(broken.url, event_types=["t"])
        for n in range(5):
            await hub.publish("t", {"n": n})
        await hub.drain()
        for _ in range(14):  # ten-hour probe steps over five days
            clock.advance(10 * 3600)
            await hub.hub.periodic.run_once()
            await hub.drain()
        state = await _health(hub, endpoint["id"])
        assert (state["status"], state["disabled_reason"]) == ("disabled", "failing")
        assert "endpoint.disabled" in _types(monitor)
        # Probes spent some deliveries' attempts; the rest stay stored, none is lost.
        statuses = []
        for event in (await hub.http.get("/v1/events?type=t")).json()["data"]:
            statuses += [
                d["status"]
                for d in (await hub.http.get(f"/v1/events/{event['id']}")).json()["deliveries"]
            ]
        assert sorted(set(statuses)) == ["failed", "pending"] and len(statuses) == 5
        assert state["pending"] == statuses.count("pending")
        calls = switch.calls
        clock.advance(10 * 3600)
        await hub.hub.periodic.run_once()
        await hub.drain()
        assert switch.calls == calls  # a disabled endpoint is sent nothing

        switch.status = 200  # the operator fixes it and enables it again: catch-up
        await hub.http.patch(f"/v1/endpoints/{endpoint['id']}", json={"status": "active"})
        await hub.drain()
        assert switch.calls == calls + statuses.count("pending")
        assert (await _health(hub, endpoint["id"]))["status"] == "active"


async def test_410_gone_disables_at_once(hub: HubClient):
    switch, monitor = Switch(410), Recorder()
    async with Receiver(switch.app, "/hook") as gone, Receiver(monitor.app, "/hook") as watch:
        await _monitor(hub, watch, monitor)
        endpoint = await hub.endpoint(gone.url, event_types=["t"])
        await hub.publish("t", {})
        await hub.drain()
        await hub.publish("t", {})  # after the 410: stored, never sent
        await hub.drain()
    assert switch.calls == 1
    state = await _health(hub, endpoint["id"])
    assert (state["status"], state["disabled_reason"]) == ("disabled", "gone")
    [event] = [
        r["payload"] for r in monitor.requests if r["payload"]["type"] == "endpoint.disabled"
    ]
    assert event["parameters"]["reason"] == "gone"


async def test_exhausted_delivery_notifies_message_attempt_exhausted(hub_factory):
    hub: HubClient = await hub_factory(retry_schedule="0s")
    switch, monitor = Switch(500), Recorder()
    async with Receiver(switch.app, "/hook") as broken, Receiver(monitor.app, "/hook") as watch:
        await _monitor(hub, watch, monitor)
        endpoint = await hub.endpoint(broken.url, event_types=["t"])
        event = await hub.publish("t", {"n": 1})
        await hub.drain()
    [notice] = [
        r["payload"]
        for r in monitor.requests
        if r["payload"]["type"] == "message.attempt.exhausted"
    ]
    assert notice["parameters"]["eventId"] == event["id"]
    assert notice["parameters"]["endpointId"] == endpoint["id"]
    assert notice["parameters"]["lastStatusCode"] == 500


async def test_health_reports_success_rate_latency_and_backlog(hub: HubClient, receiver):
    app, server = receiver
    endpoint = await hub.endpoint(server.url)
    app.set_secret(endpoint["secret"])
    for n in range(4):
        await hub.publish("t", {"n": n})
    await hub.drain()
    state = await _health(hub, endpoint["id"])
    assert state["status"] == "active" and state["last_success_at"] is not None
    assert state["last_hour"]["attempts"] == 4 and state["last_hour"]["success_rate"] == 1.0
    assert state["last_hour"]["latency_ms"]["p50"] is not None
    assert (state["pending"], state["oldest_pending_age_s"]) == (0, None)
    await hub.http.patch(f"/v1/endpoints/{endpoint['id']}", json={"status": "disabled"})
    await hub.publish("t", {"n": 9})
    state = await _health(hub, endpoint["id"])
    assert (state["status"], state["pending"], state["held"]) == ("disabled", 1, 1)
    assert state["oldest_pending_age_s"] is not None
    assert (await hub.http.get("/v1/endpoints/ep_nope/health")).status_code == 404


async def test_a_replay_to_a_failing_endpoint_probes_it_at_once(hub_factory):
    """Replaying says "it is back": the probe goes now, not at the next step an hour away, and
    its success releases what the circuit held along with the replay."""
    clock = FrozenClock(START_MS)
    hub: HubClient = await hub_factory(clock=clock, retry_schedule="1h,1h")
    switch = Switch(503)
    async with Receiver(switch.app, "/hook") as server:
        endpoint = await hub.endpoint(server.url, event_types=["t"])
        events = [(await hub.publish("t", {"n": n}))["id"] for n in range(5)]
        await hub.drain()
        assert (await _health(hub, endpoint["id"]))["status"] == "failing"
        switch.status = 200
        calls = switch.calls
        replayed = await hub.http.post(f"/v1/events/{events[0]}/replay", json={})
        assert replayed.status_code == 202, replayed.text
        await hub.hub.periodic.run_once()
        await hub.drain()
        state = await _health(hub, endpoint["id"])
        assert (state["status"], state["held"], state["pending"]) == ("active", 0, 0)
        assert switch.calls == calls + 6  # the five held and the replay


async def test_operational_events_go_only_where_asked_and_never_about_the_receiver(hub_factory):
    """An endpoint subscribed to everything got endpoint.failing and message.attempt.exhausted
    about its own outage: they could not arrive, failed, and each exhausted one raised
    another. Now they go only to endpoints listing their types, and never to their subject."""
    hub: HubClient = await hub_factory(retry_schedule="0s")
    switch, everything, monitor = Switch(503), Recorder(), Recorder()
    async with (
        Receiver(switch.app, "/hook") as broken,
        Receiver(everything.app, "/hook") as all_types,
        Receiver(monitor.app, "/hook") as watch,
    ):
        await _monitor(hub, watch, monitor)
        everything.secret = (await hub.endpoint(all_types.url))["secret"]
        down = await hub.endpoint(broken.url)  # no event_types: everything but operational
        lister = await hub.endpoint(broken.url, event_types=["t", *OPERATIONAL])
        for n in range(3):
            await hub.publish("t", {"n": n})
        await hub.drain()
        await hub.drain()
    assert set(_types(everything)) == {"t"}
    assert "message.attempt.exhausted" in _types(monitor)
    about = {r["payload"]["parameters"]["endpointId"] for r in monitor.requests}
    assert about == {down["id"], lister["id"]}
    events = (await hub.http.get("/v1/events")).json()["data"]
    for endpoint in (down, lister):  # neither has a delivery of an event about itself
        for event in events:
            if event["type"] in OPERATIONAL and event["parameters"]["endpointId"] == endpoint["id"]:
                detail = (await hub.http.get(f"/v1/events/{event['id']}")).json()
                assert endpoint["id"] not in {d["endpoint_id"] for d in detail["deliveries"]}
    replay = {"endpoint_id": lister["id"], "since": "2026-01-01", "status": "all", "dry_run": True}
    counted = (await hub.http.post("/v1/replays", json=replay)).json()["matched"]
    about_down = [e for e in events if e["type"] in OPERATIONAL
                  and e["parameters"]["endpointId"] == down["id"]]  # fmt: skip
    assert about_down and counted == 3 + len(about_down)  # never those about itself
