"""How long the console's pages take on a large store: 1,000,000 finished deliveries (and as
many attempts) spread over the last day, plus a backlog of pending ones, read by a real hub
process through its real HTTP server, signed in as a browser would be."""

from __future__ import annotations

import re
import statistics
import time
from typing import Any

import httpx

from bench import data
from bench.procs import API_KEY, Hub

DAY_MS = 86_400_000
TIMES = 7  # each page is read this often; the median is reported


def console(env: Any) -> dict[str, Any]:
    """Page times (median ms of 7 reads) with a million deliveries stored."""
    from bench.scenarios import _endpoints, event_template

    history = int(env.size(200_000, 4_000))  # events; × 5 endpoints
    backlog = int(env.size(20_000, 400))
    db = env.db("console")
    hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off"}).start()
    ids = _endpoints(hub, [f"{env.receiver.url}/ok/{n}" for n in range(5)])
    hub.stop()
    body = event_template().replace("%s", "seeded").encode()
    written = data.seed(db, ids, history, body, True, age_ms=0, spread_ms=DAY_MS - 60_000)
    data.seed(db, ids, backlog, body, False, age_ms=0)
    data.settle(db)  # what autovacuum does after a million inserts: index-only scans work
    hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off"}).start()
    try:
        with httpx.Client(base_url=hub.url, timeout=120) as browser:
            _sign_in(browser)
            event = re.search(r"/console/events/(evt_\w+)", browser.get("/console/events").text)
            assert event is not None
            pages = {
                "overview": "/console/",
                "endpoints": "/console/endpoints",
                "endpoint": f"/console/endpoints/{ids[0]}",
                "endpoint_pending": f"/console/endpoints/{ids[0]}?status=pending",
                "events": "/console/events",
                "events_by_customer": "/console/events?customer=C1",
                "event": f"/console/events/{event.group(1)}",
            }
            times = {name: _median_ms(browser, path) for name, path in pages.items()}
    finally:
        hub.stop()
    return {"deliveries_stored": written, **{f"{k}_ms": v for k, v in times.items()}}


def _sign_in(browser: httpx.Client) -> None:
    form = browser.get("/console/sign-in").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    answer = browser.post("/console/sign-in", data={"csrf": token.group(1), "key": API_KEY})
    assert answer.status_code == 303, answer.text


def _median_ms(browser: httpx.Client, path: str) -> float:
    took = []
    for _ in range(TIMES):
        started = time.perf_counter()
        answer = browser.get(path)
        took.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return round(statistics.median(took), 1)
