"""Fill a peer's Redis queue before its worker starts (run in its own process, so each run's
fresh Redis gets a fresh client):  python -m bench.peers.enqueue celery|arq REDIS URL COUNT"""

from __future__ import annotations

import asyncio
import os
import sys


def celery(redis_url: str, url: str, count: int, body: bytes) -> None:
    os.environ["BENCH_REDIS"] = redis_url
    from bench.peers import celery_task

    with celery_task.app.producer_or_acquire() as producer:
        for n in range(count):
            celery_task.deliver.apply_async((url, f"evt_{n}", body), producer=producer)


async def arq(redis_url: str, url: str, count: int, body: bytes) -> None:
    from arq import create_pool
    from arq.connections import RedisSettings

    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    for n in range(count):
        await pool.enqueue_job("deliver", url, f"evt_{n}", body)
    await pool.aclose()


def main() -> None:
    peer, redis_url, url, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    body = sys.stdin.buffer.read()
    if peer == "celery":
        celery(redis_url, url, count, body)
    else:
        asyncio.run(arq(redis_url, url, count, body))


if __name__ == "__main__":
    main()
