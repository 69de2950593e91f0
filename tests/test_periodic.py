"""Timed jobs across workers: each job that must run once per due moment (automatic
finalization, retention) runs in exactly one of however many workers share the database."""

from __future__ import annotations

import asyncio

from app.testing import FrozenClock
from tests.conftest import START_MS, HubClient


async def test_a_leased_job_runs_once_per_due_moment_whatever_the_number_of_workers(
    hub_factory,
):
    clock = FrozenClock(START_MS)
    workers: list[HubClient] = [await hub_factory(clock=clock) for _ in range(4)]

    async def ran(job: str) -> int:
        results = await asyncio.gather(*(w.hub.periodic.run_once() for w in workers))
        return sum(job in done for done in results)

    assert await ran("invoices") == 1 and await ran("retention") == 0  # the same moment
    clock.advance(30)
    assert await ran("invoices") == 0  # not due yet
    clock.advance(31)
    assert await ran("invoices") == 1
    assert await ran("subscriptions") == 4  # row-claiming jobs run in every worker's turn
