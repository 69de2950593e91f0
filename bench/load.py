"""Load generators: wrk for closed-loop maximum throughput (when installed), and a Python
generator for exact counts and fixed (open-loop) rates, run as its own pinned process.

    python -m bench.load exact --url … --key K --count N --concurrency C --body-file F --out R
    python -m bench.load paced --url … --key K --rate R --seconds S --body-file F --out R

Bodies are templates: `%s` becomes a unique id per request (transactionIds, client ids).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import re
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from app.delivery.http1 import Client
from app.egress import EgressPolicy
from bench.procs import run_auxiliary

MAX_IN_FLIGHT = 2000
LOOPBACK = EgressPolicy([ipaddress.ip_network("127.0.0.0/8")])
Headers = list[tuple[bytes, bytes]]


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk(
    url: str, script: Path, seconds: float, connections: int = 64, cpus: set[int] | None = None
) -> dict[str, Any]:
    """Closed loop: as many requests as `connections` keep-alive connections can carry."""
    args = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "-s",
        str(script),
        url,
    ]
    output = run_auxiliary(args, cpus) if cpus is not None else run_auxiliary(args)
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests": int(_find(r"(\d+) requests in", output)),
        "per_s": float(_find(r"Requests/sec:\s+([\d.]+)", output)),
        "non_2xx": int(failed.group(1)) if failed else 0,
    }


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"unexpected wrk output: {text[-500:]}")
    return match.group(1)


def wrk_script(path: Path, template: str, api_key: str) -> Path:
    """A wrk Lua script POSTing `template`, with `%s` replaced by a fresh id per request."""
    run = uuid.uuid4().hex[:8]
    path.write_text(
        f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {api_key}"
local template = [==[{template}]==]
local n = 0
request = function()
  n = n + 1
  local body = string.gsub(template, "%%s", "{run}-" .. n)
  return wrk.format(nil, nil, nil, body)
end
"""
    )
    return path


async def exact(
    url: str, headers: Headers, bodies: list[bytes], concurrency: int
) -> dict[str, Any]:
    """Closed loop over exactly these bodies."""
    client = Client(LOOPBACK, 5.0, 120.0)
    queue = list(reversed(bodies))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        while queue:
            answer = await client.post(url, headers, queue.pop())
            statuses[answer.status] = statuses.get(answer.status, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    client.close()
    return {"requests": len(bodies), "per_s": len(bodies) / elapsed, "statuses": statuses}


async def paced(
    url: str, headers: Headers, template: str, rate: float, seconds: float, cycle: int = 0
) -> dict[str, Any]:
    """Open loop: one request every 1/rate s whatever the answers. Records each accepted
    event's send time (unix seconds) so receipt times give accept → receipt latency; with
    `cycle`, `%c` in the template is the request number modulo `cycle` (to spread events
    over filtered endpoints), recorded beside the send time."""
    client = Client(LOOPBACK, 5.0, 120.0)
    sent: dict[str, float] = {}
    sent_cycle: dict[str, tuple[float, int]] = {}
    statuses: dict[int, int] = {}
    in_flight: set[asyncio.Task[None]] = set()
    run = uuid.uuid4().hex[:8]

    async def one(n: int) -> None:
        at, slot = time.time(), n % cycle if cycle else 0
        body = template.replace("%s", f"{run}-{n}").replace("%c", str(slot)).encode()
        answer = await client.post(url, headers, body)
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        if answer.status in (200, 202):
            data = json.loads(answer.body)
            event_id = str(data.get("id") or data.get("event_id"))
            sent[event_id] = at
            sent_cycle[event_id] = (at, slot)

    loop = asyncio.get_running_loop()
    start, total = loop.time(), int(rate * seconds)
    for n in range(total):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= MAX_IN_FLIGHT:
            await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(one(n))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    offered_seconds = loop.time() - start
    await asyncio.gather(*in_flight)
    client.close()
    return {
        "offered": total,
        "offered_per_s": total / offered_seconds,
        "statuses": statuses,
        "sent": sent,
        "sent_cycle": sent_cycle,
    }


def run_loader(mode: str, out: Path, **options: Any) -> dict[str, Any]:
    """Run this generator in its own process on the auxiliary CPU; its result."""
    args = [sys.executable, "-m", "bench.load", mode, "--out", str(out)]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    run_auxiliary(args)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["exact", "paced"])
    for name in ("--url", "--key", "--body-file", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0)
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--cycle", type=int, default=0)
    args = parser.parse_args()
    headers = [
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {args.key}".encode()),
    ]
    template = Path(args.body_file).read_text()
    import uvloop

    if args.mode == "exact":
        run = uuid.uuid4().hex[:8]
        bodies = [template.replace("%s", f"{run}-{n}").encode() for n in range(args.count)]
        result = uvloop.run(exact(args.url, headers, bodies, args.concurrency))
    else:
        result = uvloop.run(paced(args.url, headers, template, args.rate, args.seconds, args.cycle))
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
