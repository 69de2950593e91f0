"""`python -m bench.store_ceiling DATABASE_URL SECONDS`: how many deliveries per second the
database turns over for one worker process with no HTTP at all — claim a batch, record each as
a success (attempt row, delivery finished, health), claim the next, exactly the store verbs the
worker uses. Several of these processes at once show where one PostgreSQL saturates.
Prints {"finished": n, "seconds": s}."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from app.clock import SystemClock
from app.config import Settings
from app.delivery import Outcome
from app.records import Finished
from app.sealing import Sealer
from app.settle import settle
from app.store import open_store
from app.store.deliveries import Claim
from app.worker import rules_for
from bench.procs import SECRET_KEY

BATCH = 500


async def main(url: str, seconds: float) -> None:
    store = await open_store(url, sealer=Sealer((SECRET_KEY,)))  # the key the hub sealed with
    clock, rules = SystemClock(), rules_for(Settings.from_env({}))
    finished_count, finished = 0, list[Finished]()
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            now = clock.now_ms()
            turn = await store.deliveries.turn(finished, now, now + 60_000, Claim(BATCH, BATCH),
                                               rules)  # fmt: skip
            finished_count += len(finished)
            finished = [settle(job, Outcome(now, 1, 200), ()) for job in turn.jobs]
            if not turn.jobs and not finished:
                break
        print(json.dumps({"finished": finished_count, "seconds": time.monotonic() - started}))
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
