"""The Celery + Redis peer: one task per delivery, posting with a shared httpx client."""

from __future__ import annotations

import os

import httpx
from celery import Celery

from bench.peers.common import headers

app = Celery("bench", broker=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,
    worker_prefetch_multiplier=64,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
client = httpx.Client(timeout=15)  # shared by every task in this worker process


@app.task(ignore_result=True)
def deliver(url: str, msg_id: str, body: bytes) -> None:
    client.post(url, content=body, headers=headers(msg_id, body)).raise_for_status()
