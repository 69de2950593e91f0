"""End to end: real uvicorn receivers on loopback, real deliveries over sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.testing import Receiver
from tests.conftest import HubClient, seed_parameters
from tests.waiting import until

BILLING = "subscriptions/billingInformationAvailable"


class Recorder:
    """A receiver that checks every request with the public standardwebhooks library and
    answers with the status codes it is given, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.secret = ""
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        payload = Webhook(self.secret).verify(body, headers)  # raises if the signature is wrong
        self.requests.append({"headers": headers, "body": body, "payload": payload})
        status = self.statuses.pop(0) if self.statuses else 200
        return PlainTextResponse("ok" if status < 300 else "failing", status_code=status)

    def ids(self) -> list[str]:
        return [r["headers"]["webhook-id"] for r in self.requests]


async def test_fan_out_to_three_endpoints_with_filters(hub: HubClient):
    """Each event reaches exactly the endpoints whose type and filter match, signed for each."""
    everything, customer, contract = Recorder(), Recorder(), Recorder()
    async with (
        Receiver(everything.app, "/hook") as r1,
        Receiver(customer.app, "/hook") as r2,
        Receiver(contract.app, "/hook") as r3,
    ):
        everything.secret = (await hub.endpoint(r1.url))["secret"]
        customer.secret = (
            await hub.endpoint(r2.url, event_types=[BILLING], filter={"customerNumber": "C1"})
        )["secret"]
        contract.secret = (
            await hub.endpoint(r3.url, filter={"customerNumber": "C1", "externalContractId": "K1"})
        )["secret"]
        e1 = await hub.publish(
            BILLING, seed_parameters({"customerNumber": "C1", "externalContractId": "K1"})
        )
        e2 = await hub.publish(
            BILLING, seed_parameters({"customerNumber": "C1", "externalContractId": "K2"})
        )
        e3 = await hub.publish(
            BILLING, seed_parameters({"customerNumber": "C2", "externalContractId": "K1"})
        )
        e4 = await hub.publish("other", {"customerNumber": "C1", "externalContractId": "K1"})
        assert [e["deliveries"] for e in (e1, e2, e3, e4)] == [3, 2, 1, 2]
        assert await hub.drain() == 8
    assert sorted(everything.ids()) == sorted(e["id"] for e in (e1, e2, e3, e4))
    assert sorted(customer.ids()) == sorted([e1["id"], e2["id"]])
    assert sorted(contract.ids()) == sorted([e1["id"], e4["id"]])
    assert everything.requests[0]["payload"] == {
        "parameters": seed_parameters({"customerNumber": "C1", "externalContractId": "K1"}),
        "type": BILLING,
    }


async def test_failing_twice_then_succeeding_takes_three_attempts_with_one_webhook_id(
    hub: HubClient,
):
    """Retries reuse the event id as webhook-id; each attempt is recorded and signed afresh."""
    recorder = Recorder(statuses=[500, 503])
    async with Receiver(recorder.app, "/hook") as server:
        recorder.secret = (await hub.endpoint(server.url))["secret"]
        event = await hub.publish(BILLING, seed_parameters({"customerNumber": "C1"}))
        assert await hub.drain() == 3
    assert recorder.ids() == [event["id"]] * 3
    assert len({r["body"] for r in recorder.requests}) == 1  # byte-identical on every retry
    detail = (await hub.http.get(f"/v1/events/{event['id']}")).json()
    [delivery] = detail["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "succeeded",
        3,
        200,
    )
    attempts = (await hub.http.get(f"/v1/deliveries/{delivery['id']}/attempts")).json()["data"]
    assert [(a["attempt"], a["status_code"], a["error"]) for a in attempts] == [
        (3, 200, None),
        (2, 503, "http_5xx"),
        (1, 500, "http_5xx"),
    ]
    assert attempts[2]["response_body"] == "failing"


async def test_exhausted_deliveries_end_failed(hub: HubClient):
    """With a schedule of three retries, the fourth failure marks the delivery failed."""
    recorder = Recorder(statuses=[500] * 10)
    async with Receiver(recorder.app, "/hook") as server:
        # Subscribed to "t" only, so the operational events it causes go elsewhere.
        recorder.secret = (await hub.endpoint(server.url, event_types=["t"]))["secret"]
        event = await hub.publish("t", {})
        assert await hub.drain() == 4
    [delivery] = (await hub.http.get(f"/v1/events/{event['id']}")).json()["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["next_attempt_at"]) == (
        "failed",
        4,
        None,
    )


async def test_running_worker_delivers_without_being_driven(hub_factory):
    """`billhook serve` mode: the in-process worker is woken by each commit."""
    hub: HubClient = await hub_factory(run_worker=True)
    recorder = Recorder()
    async with Receiver(recorder.app, "/hook") as server:
        recorder.secret = (await hub.endpoint(server.url))["secret"]
        events = [await hub.publish("t", {"n": n}) for n in range(50)]
        await until(lambda: len(recorder.requests) >= 50)
    assert sorted(recorder.ids()) == sorted(e["id"] for e in events)


async def test_every_outcome_of_a_running_worker_is_recorded(hub_factory):
    """Each delivery the receiver got ends `succeeded` with exactly one attempt: no result is
    dropped between the sending tasks and the batch recorder (which would re-send it later)."""
    hub: HubClient = await hub_factory(run_worker=True, worker_concurrency=8)
    recorder = Recorder()
    async with Receiver(recorder.app, "/hook") as server:
        recorder.secret = (await hub.endpoint(server.url))["secret"]
        events = await asyncio.gather(*(hub.publish("t", {"n": n}) for n in range(200)))

        async def statuses() -> list[tuple[str, int]]:
            found = []
            for event in events:
                detail = (await hub.http.get(f"/v1/events/{event['id']}")).json()
                found += [(d["status"], d["attempts"]) for d in detail["deliveries"]]
            return found

        await until(lambda: len(recorder.requests) >= 200)

        async def all_succeeded_once() -> bool:
            return await statuses() == [("succeeded", 1)] * 200

        await until(all_succeeded_once, 10)
    assert len(recorder.ids()) == 200


async def test_disabled_endpoint_keeps_deliveries_and_sends_them_when_enabled(hub: HubClient):
    recorder = Recorder()
    async with Receiver(recorder.app, "/hook") as server:
        ep = await hub.endpoint(server.url)
        recorder.secret = ep["secret"]
        before = await hub.publish("t", {"n": 1})
        await hub.http.patch(f"/v1/endpoints/{ep['id']}", json={"status": "disabled"})
        during = await hub.publish("t", {"n": 2})
        assert during["deliveries"] == 1  # stored even though the endpoint is disabled
        assert await hub.drain() == 0
        [held] = (await hub.http.get(f"/v1/events/{during['id']}")).json()["deliveries"]
        assert (held["status"], held["next_attempt_at"]) == ("pending", None)
        await hub.http.patch(f"/v1/endpoints/{ep['id']}", json={"status": "active"})
        assert await hub.drain() == 2
    assert sorted(recorder.ids()) == sorted([before["id"], during["id"]])
