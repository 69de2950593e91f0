"""The scenarios: each starts real processes, measures one run, returns its figures."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import data, databases
from bench.load import have_wrk, run_loader, wrk, wrk_script
from bench.procs import (
    API_KEY,
    UNDER_TEST,
    Hub,
    Receiver,
    peak_rss_mb,
    redis_server,
    rss_mb,
    spawn,
    stop,
)

ROOT = Path(__file__).resolve().parent.parent
FILLER = "x" * 870  # makes a generic event's request body about 1 KiB
BILLING = "subscriptions/billingInformationAvailable"


@dataclass
class Env:
    workdir: Path
    receiver: Receiver
    quick: bool
    backend: str = "sqlite"  # where scenarios keep their data: sqlite | postgres
    workers: int = 1  # worker processes draining a backlog (PostgreSQL can run several)
    created: list[str] = field(default_factory=list)

    def db(self, name: str) -> str:
        """A fresh database (URL) on this run's backend."""
        url = databases.new_database(self.workdir, self.backend, name)
        self.created.append(url)
        return url

    def cleanup(self) -> None:
        for url in self.created:
            databases.drop(url)
        self.created.clear()

    def size(self, full: float, quick: float) -> float:
        return quick if self.quick else full


BATCH = 100  # events per request in accept_batch


SEED = Path(__file__).resolve().parent.parent / "fixtures/billing-information-available.seed.json"


def event_template(customer: str = "CUST-1") -> str:
    """Seed 003's event (1.2 KiB; a published built-in type is checked against its schema)
    for `customer`, its id left to fill in."""
    parameters = json.loads(SEED.read_bytes())["parameters"]
    parameters.update(customerNumber=customer, externalContractId="K-1")
    return json.dumps({"type": BILLING, "parameters": parameters, "id": "%s"})


def _endpoints(hub: Hub, urls: list[str], filters: list[dict[str, str]] | None = None) -> list[str]:
    ids = []
    with hub.client() as client:
        for n, url in enumerate(urls):
            body: dict[str, Any] = {"url": url}
            if filters:
                body["filter"] = filters[n]
            answer = client.post("/v1/endpoints", json=body)
            answer.raise_for_status()
            ids.append(answer.json()["id"])
    return ids


def _accept(env: Env, hub: Hub, path: str, template: str, per_request: int = 1) -> dict[str, Any]:
    """Requests per second through wrk (for a while), or the Python generator (a set number of
    events, `per_request` in each request)."""
    seconds = env.size(10, 2)
    if have_wrk():
        script = wrk_script(env.workdir / "post.lua", template, API_KEY)
        result = wrk(f"{hub.url}{path}", script, seconds)
        return {"per_s": result["per_s"], "non_2xx": result["non_2xx"], "generator": "wrk"}
    body = env.workdir / "body.json"
    body.write_text(template)
    result = run_loader(
        "exact",
        env.workdir / "load.json",
        url=f"{hub.url}{path}",
        key=API_KEY,
        body_file=body,
        count=max(int(env.size(20000, 3000)) // per_request, 64),
        concurrency=64,
    )
    failed = sum(n for status, n in result["statuses"].items() if not str(status).startswith("2"))
    return {"per_s": result["per_s"], "non_2xx": failed, "generator": "python"}


def accept_events(env: Env) -> dict[str, Any]:
    """POST /v1/events, 3 matching endpoints: events accepted (committed) per second."""
    hub = Hub(env.workdir, env.db("accept"), {"BILLHOOK_WORKER": "off"}).start()
    try:
        _endpoints(hub, [f"{env.receiver.url}/ok/{n}" for n in range(3)])
        result = _accept(env, hub, "/v1/events", event_template())
    finally:
        hub.stop()
    events, deliveries = _count(hub.db)
    return {
        "events_per_s": result["per_s"],
        "non_2xx": result["non_2xx"],
        "deliveries_per_event": deliveries / max(events, 1),
        "generator": result["generator"],
    }


def accept_batch(env: Env) -> dict[str, Any]:
    """POST /v1/events/batch, 100 events per request, 3 matching endpoints: events accepted
    (committed) per second, to set beside the bare-store floor (bench/floor.py)."""
    return accept_batch_with(env, 3)


def accept_batch_with(env: Env, endpoints: int) -> dict[str, Any]:
    hub = Hub(env.workdir, env.db(f"batch{endpoints}"), {"BILLHOOK_WORKER": "off"}).start()
    try:
        _endpoints(hub, [f"{env.receiver.url}/ok/{n}" for n in range(endpoints)])
        items = [event_template().replace('"%s"', f'"%s-{n}"') for n in range(BATCH)]
        body = '{"items": [' + ",".join(items) + "]}"
        result = _accept(env, hub, "/v1/events/batch", body, per_request=BATCH)
    finally:
        hub.stop()
    events, _ = _count(hub.db)
    return {
        "events_per_s": result["per_s"] * BATCH,
        "requests_per_s": result["per_s"],
        "non_2xx": result["non_2xx"],
        "stored_events": events,
    }


def accept_rated(env: Env) -> dict[str, Any]:
    """POST /v1/usage-completions with a rated car-sharing item."""
    hub = Hub(env.workdir, env.db("rated"), {"BILLHOOK_WORKER": "off"}).start()
    try:
        _endpoints(hub, [f"{env.receiver.url}/ok/{n}" for n in range(3)])
        model = json.loads((ROOT / "fixtures/price-model.car-sharing.json").read_text())
        with hub.client() as client:
            model_id = client.post("/v1/price-models", json=model).json()["id"]
        trip = json.loads((ROOT / "fixtures/usage-completion.car-sharing.json").read_text())
        trip["transactionId"] = "%s"
        trip["items"][0]["priceModelId"] = model_id
        result = _accept(env, hub, "/v1/usage-completions", json.dumps(trip))
    finally:
        hub.stop()
    return {"completions_per_s": result["per_s"], "non_2xx": result["non_2xx"]}


def _count(db: str) -> tuple[int, int]:
    [(events,)] = databases.query(db, "SELECT count(*) FROM events")
    [(deliveries,)] = databases.query(db, "SELECT count(*) FROM deliveries")
    return int(events), int(deliveries)


def _backlog(env: Env, db: str, endpoints: int, events: int) -> None:
    """`events` events through the API (worker off), one delivery per endpoint each; the
    first call registers `endpoints` endpoints, a later one on the same store passes 0."""
    hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off"}).start()
    try:
        if endpoints:
            _endpoints(hub, [f"{env.receiver.url}/ok/{n}" for n in range(endpoints)])
        body = env.workdir / "event.json"
        body.write_text(event_template())
        run_loader(
            "exact",
            env.workdir / "load.json",
            url=f"{hub.url}/v1/events",
            key=API_KEY,
            body_file=body,
            count=events,
            concurrency=64,
        )
    finally:
        hub.stop()


def _drain(env: Env, db: str, expected: int, timeout: float) -> dict[str, Any]:
    """Start the hub with its worker (or `env.workers` worker processes) on the backlog; the
    receiver's arrival times give the rate."""
    env.receiver.reset()
    if env.workers == 1:
        hubs = [Hub(env.workdir, db).start()]
    else:  # several processes, unpinned (the point is to use both CPUs), started together
        hubs = [Hub(env.workdir, db, role="worker", cpus=None) for _ in range(env.workers)]
        for hub in hubs:
            hub.launch()
        for hub in hubs:
            hub.ready()
    started = time.time()
    try:
        deadline = time.monotonic() + timeout
        while (stats := env.receiver.stats())["count"] < expected:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        rss = max(peak_rss_mb(h.proc.pid) for h in hubs if h.proc)
    finally:
        for hub in hubs:
            hub.stop()
    spread = (stats["last"] or started) - (stats["first"] or started)
    return {
        "delivered": stats["count"],
        "deliveries_per_s": stats["count"] / max(spread, 1e-9),
        "from_start_per_s": stats["count"] / max((stats["last"] or started) - started, 1e-9),
        "peak_rss_mb": rss,
    }


def deliver(env: Env) -> dict[str, Any]:
    """Drain a backlog of 50,000 deliveries (10,000 events × 5 endpoints)."""
    events = int(env.size(10_000, 1_000))
    db = env.db("deliver")
    _backlog(env, db, 5, events)
    return _drain(env, db, events * 5, timeout=120)


def mixed(env: Env) -> dict[str, Any]:
    """Accepting and delivering at once: the highest sustained rate (in = out) and the
    accept → receipt latency at 1,000 events/s, one endpoint."""
    hub = Hub(env.workdir, env.db("mixed")).start()
    try:
        _endpoints(hub, [f"{env.receiver.url}/ok/0"])
        latency = _latency(env, hub, rate=1000, seconds=env.size(10, 2))
        sustained = _sustained(env, hub)
    finally:
        hub.stop()
    return {"sustained_per_s": sustained, **latency}


def _paced(env: Env, hub: Hub, rate: float, seconds: float, template: str) -> dict[str, Any]:
    body = env.workdir / "paced.json"
    body.write_text(template)
    return run_loader(
        "paced",
        env.workdir / "paced-out.json",
        url=f"{hub.url}/v1/events",
        key=API_KEY,
        body_file=body,
        rate=rate,
        seconds=seconds,
    )


def _latency(
    env: Env, hub: Hub, rate: float, seconds: float, template: str | None = None, grace: float = 5.0
) -> dict[str, Any]:
    env.receiver.reset()
    result = _paced(env, hub, rate, seconds, template or event_template())
    sent: dict[str, float] = result["sent"]
    deadline = time.monotonic() + grace
    while env.receiver.stats()["unique"] < len(sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    arrivals = env.receiver.stats(ids=True)["ids"]
    waits = sorted((arrivals[i] - t) * 1000 for i, t in sent.items() if i in arrivals)
    return {
        "p50_ms": _percentile(waits, 50),
        "p99_ms": _percentile(waits, 99),
        "received_fraction": len(waits) / max(len(sent), 1),
        "offered_per_s": result["offered_per_s"],
    }


def _percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _sustained(env: Env, hub: Hub) -> float:
    """The highest offered rate at which every event is accepted and delivered within a second
    of the end of the run (in = out), found by doubling then bisecting."""
    seconds = env.size(8, 1.5)
    good, bad = 0.0, None
    rate = 1000.0
    for _ in range(int(env.size(7, 2))):
        ok = _keeps_up(env, hub, rate, seconds)
        if ok:
            good = rate
        else:
            bad = rate
        rate = rate * 2 if bad is None else (good + bad) / 2
        if bad is not None and bad - good < 250:
            break
    return good


def _keeps_up(env: Env, hub: Hub, rate: float, seconds: float) -> bool:
    env.receiver.reset()
    result = _paced(env, hub, rate, seconds, event_template())
    accepted = len(result["sent"])
    deadline = time.monotonic() + 1.0
    while env.receiver.stats()["unique"] < accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    delivered = env.receiver.stats()["unique"]
    return bool(
        accepted >= 0.999 * result["offered"]
        and result["offered_per_s"] >= 0.97 * rate
        and delivered >= 0.999 * accepted
    )


def growth(env: Env) -> dict[str, Any]:
    """The deliver rate with 1,000,000 finished deliveries in history, and the hub's peak RSS
    while it works through a 1,000,000-delivery backlog."""
    history = int(env.size(200_000, 5_000))  # events; × 5 endpoints
    db = env.db("history")
    hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off"}).start()
    endpoint_ids = _endpoints(hub, [f"{env.receiver.url}/ok/{n}" for n in range(5)])
    hub.stop()
    body = event_template().replace("%s", "seeded").encode()
    written = data.seed(db, endpoint_ids, history, body, finished=True)
    events = int(env.size(10_000, 1_000))
    _backlog(env, db, 0, events)  # the endpoints are already registered
    rate = _drain(env, db, events * 5, timeout=120)
    rss = _rss_backlog(env, int(env.size(200_000, 10_000)), env.size(20, 2))
    return {
        "history_deliveries": written,
        "deliveries_per_s_with_history": rate["deliveries_per_s"],
        **rss,
    }


def _rss_backlog(env: Env, events: int, seconds: float) -> dict[str, Any]:
    db = env.db("backlog")
    hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off"}).start()
    endpoint_ids = _endpoints(hub, [f"{env.receiver.url}/ok/{n}" for n in range(5)])
    hub.stop()
    backlog = data.seed(
        db, endpoint_ids, events, event_template().replace("%s", "b").encode(), False
    )
    env.receiver.reset()
    hub = Hub(env.workdir, db).start()
    try:
        time.sleep(seconds)  # the measurement window: the hub works through the backlog
        rss = peak_rss_mb(hub.proc.pid) if hub.proc else float("nan")
    finally:
        hub.stop()
    return {
        "backlog_deliveries": backlog,
        "peak_rss_mb_backlog": rss,
        "backlog_delivered_in_window": env.receiver.stats()["count"],
    }


def failing(env: Env) -> dict[str, Any]:
    """20 endpoints, one answering 500 and one never answering (10 %): the healthy ones'
    accept → receipt latency at 500 events/s, each event going to one endpoint."""
    hub = Hub(env.workdir, env.db("failing")).start()
    try:
        urls = [f"{env.receiver.url}/ok/{n}" for n in range(18)]
        urls += [f"{env.receiver.url}/fail/18", f"{env.receiver.url}/hang/19"]
        _endpoints(hub, urls, [{"customerNumber": f"c{n}"} for n in range(20)])
        healthy = _healthy_latency(env, hub, rate=500, seconds=env.size(20, 3))
    finally:
        hub.stop(sig=9)  # hung requests would hold a graceful stop for the whole timeout
    return healthy


def _healthy_latency(env: Env, hub: Hub, rate: float, seconds: float) -> dict[str, Any]:
    env.receiver.reset()
    body = env.workdir / "cycle.json"
    body.write_text(event_template("c%c"))
    result = run_loader(
        "paced",
        env.workdir / "cycle-out.json",
        url=f"{hub.url}/v1/events",
        key=API_KEY,
        body_file=body,
        rate=rate,
        seconds=seconds,
        cycle=20,
    )
    sent = {i: at for i, (at, n) in result["sent_cycle"].items() if n < 18}
    deadline = time.monotonic() + 5
    while env.receiver.stats()["unique"] < len(sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    arrivals = env.receiver.stats(ids=True)["ids"]
    waits = sorted((arrivals[i] - t) * 1000 for i, t in sent.items() if i in arrivals)
    return {
        "healthy_p50_ms": _percentile(waits, 50),
        "healthy_p99_ms": _percentile(waits, 99),
        "healthy_received_fraction": len(waits) / max(len(sent), 1),
    }


def replay(env: Env) -> dict[str, Any]:
    """Live accept → receipt latency at 500 events/s with and without a replay of 100,000
    stored events running at its default pace; then the same replay unpaced, sampling the
    hub's RSS from start to end (the job streams in batches, so memory stays flat)."""
    stored = int(env.size(100_000, 5_000))
    db = env.db("replay")
    hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off"}).start()
    old = {"customerNumber": "C1"}
    history, paced, unpaced, _live = _endpoints(
        hub,
        [f"{env.receiver.url}/ok/{n}" for n in range(4)],
        [old, old, old, {"customerNumber": "live"}],
    )
    hub.stop()
    data.seed(db, [history], stored, event_template().replace("%s", "old").encode(), True)
    window = env.size(20, 2)
    hub = Hub(env.workdir, db).start()
    try:
        _latency(env, hub, rate=500, seconds=env.size(5, 0.5), template=event_template("live"))
        quiet = _latency(env, hub, rate=500, seconds=window, template=event_template("live"))
        job = _start_replay(hub, paced, None)
        busy = _latency(env, hub, rate=500, seconds=window, template=event_template("live"))
        with hub.client() as client:
            client.post(f"/v1/replays/{job}/cancel").raise_for_status()
        memory = _replay_memory(hub, unpaced, stored, timeout=env.size(300, 60))
    finally:
        hub.stop()
    return {
        "stored_events": stored,
        "live_p99_ms_quiet": quiet["p99_ms"],
        "live_p99_ms_replaying": busy["p99_ms"],
        "live_p99_ratio": busy["p99_ms"] / max(quiet["p99_ms"], 1e-9),
        "live_received_fraction_replaying": busy["received_fraction"],
        **memory,
    }


def _start_replay(hub: Hub, endpoint_id: str, rate: int | None) -> str:
    body: dict[str, Any] = {"endpoint_id": endpoint_id, "since": "2000-01-01", "status": "all"}
    if rate is not None:
        body["rate_per_s"] = rate
    with hub.client() as client:
        answer = client.post("/v1/replays", json=body)
        answer.raise_for_status()
        return str(answer.json()["id"])


def _replay_memory(hub: Hub, endpoint_id: str, stored: int, timeout: float) -> dict[str, Any]:
    assert hub.proc is not None
    before = rss_mb(hub.proc.pid)
    started = time.monotonic()
    job = _start_replay(hub, endpoint_id, 100_000)
    samples = [before]
    state: dict[str, Any] = {"status": "running", "succeeded": 0}
    with hub.client() as client:
        while state["status"] == "running" and time.monotonic() - started < timeout:
            time.sleep(0.5)
            samples.append(rss_mb(hub.proc.pid))
            state = client.get(f"/v1/replays/{job}").json()
    elapsed = time.monotonic() - started
    return {
        "unpaced_replay_events_per_s": state["succeeded"] / elapsed,
        "unpaced_replay_done": state["status"] == "done" and state["succeeded"] == stored,
        "rss_mb_before_replay": before,
        "rss_mb_peak_during_replay": max(samples),
    }


def store_ceiling(env: Env) -> dict[str, Any]:
    """What the database alone turns over: 1 and 4 processes claiming and recording deliveries
    with the worker's store verbs, no HTTP (bench/store_ceiling.py), from a backlog of 200,000."""
    events = int(env.size(40_000, 4_000))  # × 5 endpoints
    figures: dict[str, Any] = {}
    for processes in (1, 4):
        db = env.db(f"ceiling{processes}")
        hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off"}).start()
        ids = _endpoints(hub, [f"{env.receiver.url}/ok/{n}" for n in range(5)])
        hub.stop()
        data.seed(db, ids, events, event_template().replace("%s", "c").encode(), False)
        seconds = env.size(10, 2)
        command = [sys.executable, "-m", "bench.store_ceiling", db, str(seconds)]
        runs = [
            subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE) for _ in range(processes)
        ]
        results = [json.loads(run.communicate(timeout=600)[0]) for run in runs]
        finished = sum(r["finished"] for r in results)
        figures[f"deliveries_per_s_{processes}_process"] = finished / max(
            max(r["seconds"] for r in results), 1e-9
        )
    return figures


def retention(env: Env) -> dict[str, Any]:
    """2,000,000 finished deliveries (with their attempts) past the retention period are purged
    (on PostgreSQL their week dropped whole, the events in batches) by another process (the
    hub's retention job without its per-run budget, paced as it paces) while live traffic
    flows at 300 events/s: live p99 quiet and while purging, rows purged (PostgreSQL's estimate
    for a dropped week) per second, and the tables' size after seeding, after the purge (and
    VACUUM, as autovacuum would), and after as much new traffic again, inserted as the hub
    inserts (space reused, or the tables grow)."""
    events = int(env.size(400_000, 10_000))  # × 5 endpoints
    db = env.db("retention")
    hub = Hub(env.workdir, db, {"BILLHOOK_WORKER": "off"}).start()
    old = {"customerNumber": "C1"}
    ids = _endpoints(hub, [f"{env.receiver.url}/ok/{n}" for n in range(6)],
                     [old] * 5 + [{"customerNumber": "live"}])  # fmt: skip
    hub.stop()
    age_ms = 40 * 86_400_000
    data.weeks(db, int(time.time() * 1000) - age_ms)  # as the hub made them over 40 days
    body = event_template().replace("%s", "old").encode()
    written = data.seed(db, ids[:5], events, body, True, age_ms=age_ms)
    data.settle(db)  # what autovacuum does after the seed, so the quiet window is quiet …
    databases.query(db, "CHECKPOINT")  # … and no checkpoint of the seed's pages falls in it
    tables = ("events", "deliveries", "attempts")
    seeded_mb = databases.table_mb(db, *tables)
    window = env.size(20, 3)
    # The hub's own retention job keeps 10 years here: the purger beside it does the purge,
    # inside the measured window (the job would drop the old week at start-up, before it).
    hub = Hub(env.workdir, db, {"BILLHOOK_RETENTION_DAYS": "3650"}).start()
    try:
        live = event_template("live")
        # Unmeasured: a fresh hub makes its connections and prepared statements in the first
        # fraction of a second of load, which would otherwise be the quiet window's tail.
        _latency(env, hub, rate=300, seconds=env.size(3, 1), template=live)
        quiet = _latency(env, hub, rate=300, seconds=window, template=live)
        purger = subprocess.Popen(
            [sys.executable, "-m", "bench.purge", db, "30"], cwd=ROOT, stdout=subprocess.PIPE
        )
        busy = _latency(env, hub, rate=300, seconds=window, template=live)
        out, _ = purger.communicate(timeout=3600)
    finally:
        hub.stop()
    purge = json.loads(out)
    purged_mb = databases.table_mb(db, *tables)
    for _ in range(2):  # what autovacuum does over time: a second pass recycles index pages
        for table in tables:
            databases.query(db, f"VACUUM ANALYZE {table}")
    vacuumed_mb = databases.table_mb(db, *tables)
    data.seed(db, ids[:5], events, body, True, age_ms=0, copy=False)  # as much traffic again
    refilled_mb = databases.table_mb(db, *tables)
    return {
        "finished_deliveries": written,
        "live_p99_ms_quiet": quiet["p99_ms"],
        "live_p99_ms_purging": busy["p99_ms"],
        "live_p99_ratio_purging": busy["p99_ms"] / max(quiet["p99_ms"], 1e-9),
        "purged_rows_per_s": purge["removed"] / max(purge["seconds"], 1e-9),
        "tables_mb_seeded": seeded_mb,
        "tables_mb_after_purge": purged_mb,
        "tables_mb_after_vacuum": vacuumed_mb,
        "tables_mb_refilled": refilled_mb,
        "refilled_over_seeded": refilled_mb / max(seeded_mb, 1e-9),
    }


# -- ceilings and peers ---------------------------------------------------------------------------


def receiver_ceiling(env: Env) -> dict[str, Any]:
    """A load generator straight at the receiver: what it can take at all."""
    template = json.dumps({"parameters": {"note": FILLER + "xxxxxxxxxxxxxx"}, "type": "t"})
    if have_wrk():
        script = env.workdir / "receiver.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = [==[{template}]==]\n"
        )
        # wrk on the hub's CPU (idle now), so receiver and generator do not share one core.
        result = wrk(f"{env.receiver.url}/ok/ceiling", script, env.size(5, 2), cpus=UNDER_TEST)
        return {"requests_per_s": result["per_s"]}
    body = env.workdir / "receiver.json"
    body.write_text(template)
    result = run_loader(
        "exact",
        env.workdir / "load.json",
        url=f"{env.receiver.url}/ok/ceiling",
        key="none",
        body_file=body,
        count=int(env.size(30000, 5000)),
        concurrency=64,
    )
    return {"requests_per_s": result["per_s"]}


def _peer(env: Env, name: str, command: list[str], count: int) -> dict[str, Any]:
    """Fill the peer's queue, start its worker on the hub's CPU, time the drain at the receiver."""
    body = event_template().replace("%s", "peer").encode()
    with redis_server(env.workdir) as redis_url:
        fill = [
            sys.executable,
            "-m",
            "bench.peers.enqueue",
            name,
            redis_url,
            f"{env.receiver.url}/ok/{name}",
            str(count),
        ]
        subprocess.run(fill, input=body, cwd=ROOT, check=True)
        env.receiver.reset()
        worker = spawn(command, env.workdir / f"{name}.log", UNDER_TEST, {"BENCH_REDIS": redis_url})
        try:
            deadline = time.monotonic() + 300
            while (stats := env.receiver.stats())["count"] < count and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            stop(worker)
    spread = (stats["last"] or 0) - (stats["first"] or 0)
    return {"deliveries_per_s": stats["count"] / max(spread, 1e-9), "delivered": stats["count"]}


def celery(env: Env) -> dict[str, Any]:
    """Celery + Redis, one worker process (prefork, concurrency 1) on the hub's CPU."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.peers.celery_task",
        "worker",
        "--concurrency=1",
        "--pool=prefork",
        "--loglevel=WARNING",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
    ]
    return _peer(env, "celery", command, int(env.size(5000, 500)))


def arq(env: Env) -> dict[str, Any]:
    """arq, one worker process (64 concurrent jobs) on the hub's CPU."""
    command = [sys.executable, "-m", "arq", "bench.peers.arq_job.WorkerSettings", "--burst"]
    return _peer(env, "arq", command, int(env.size(5000, 500)))


Scenario = Callable[[Env], dict[str, Any]]


def on_postgres(scenario: Scenario, workers: int = 1) -> Scenario:
    """The same scenario with its data in PostgreSQL (and `workers` worker processes)."""

    def run(env: Env) -> dict[str, Any]:
        pg = replace(env, backend="postgres", workers=workers, created=[])
        try:
            return scenario(pg)
        finally:
            pg.cleanup()

    run.__doc__ = f"{scenario.__doc__} (PostgreSQL, {workers} worker process(es))"
    return run


def console(env: Env) -> dict[str, Any]:
    """The console's page times on a store of a million deliveries (bench/console_pages.py)."""
    from bench.console_pages import console as run

    return run(env)


def store_floor(env: Env) -> dict[str, Any]:
    """The rows accept_batch commits, written with no hub code (bench/floor.py)."""
    from bench.floor import store_floor as run

    return run(env)


def accept_batch_endpoints(env: Env) -> dict[str, Any]:
    """accept_batch with 1, 3, 10 and 30 matching endpoints per event (bench/floor.py)."""
    from bench.floor import accept_batch_endpoints as run

    return run(env)


SCENARIOS = {
    "receiver_ceiling": receiver_ceiling,
    "accept_events": accept_events,
    "accept_batch": accept_batch,
    "store_floor": store_floor,
    "accept_batch_endpoints": accept_batch_endpoints,
    "accept_rated": accept_rated,
    "deliver": deliver,
    "mixed": mixed,
    "failing": failing,
    "growth": growth,
    "replay": replay,
    "console": console,
    "celery": celery,
    "arq": arq,
}

# `python -m bench --db postgres`: SQLite and PostgreSQL side by side in one run.
POSTGRES_SCENARIOS = {
    "receiver_ceiling": receiver_ceiling,
    "accept_events": accept_events,
    "accept_batch": accept_batch,
    "deliver": deliver,
    "mixed": mixed,
    "accept_events@postgres": on_postgres(accept_events),
    "accept_batch@postgres": on_postgres(accept_batch),
    "store_floor": store_floor,
    "store_floor@postgres": on_postgres(store_floor),
    "accept_batch_endpoints": accept_batch_endpoints,
    "accept_batch_endpoints@postgres": on_postgres(accept_batch_endpoints),
    "deliver@postgres": on_postgres(deliver),
    "deliver@postgres×2": on_postgres(deliver, workers=2),
    "mixed@postgres": on_postgres(mixed),
    "growth@postgres": on_postgres(growth),
    "retention@postgres": on_postgres(retention),
    "store_ceiling": store_ceiling,
    "store_ceiling@postgres": on_postgres(store_ceiling),
    "console": console,
    "console@postgres": on_postgres(console),
}
