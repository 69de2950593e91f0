"""`python -m bench.purge DATABASE_URL DAYS`: purge everything older than DAYS now, as the
retention job does (same batches, same store verbs) but without its per-run time budget;
prints {"removed": n, "seconds": s}. The retention scenario runs it beside a live hub."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from app.clock import SystemClock
from app.retention import RetentionService
from app.store import open_store


async def main(url: str, days: int) -> None:
    store = await open_store(url)
    try:
        started = time.monotonic()
        removed = await RetentionService(store, SystemClock(), days).purge()
        print(json.dumps({"removed": removed, "seconds": time.monotonic() - started}))
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
