"""The bounded reads behind the console, on both backends: a chart slice samples at most
`sample` attempts and counts the rest from the index; queue and backlog counts stop at their
cap; an endpoint's deliveries of every status come newest first, page after page, each once.
And the pure shaping of a chart's slices (app/activity.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.activity import Slice, bounds, summarise
from app.ids import new_id
from app.records import Delivery, Endpoint, NewDelivery, NewEvent
from app.store import Store, open_store
from tests.backends import rows
from tests.conftest import SEALER, START_MS
from tests.test_store import _endpoint, _event


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await open_store(database_url, sealer=SEALER, migrate_now_ms=START_MS)
    await opened.tenants.ensure("tn_default", "default", None, START_MS)
    yield opened
    await opened.close()


async def _deliveries(store: Store, endpoint: Endpoint, due: list[int | None]) -> list[str]:
    """One event per entry, its delivery due then (None: held); ids in minting order."""
    ids = []
    for at in due:
        delivery = NewDelivery(new_id("dlv"), endpoint.id, at)
        await store.events.insert(NewEvent(_event(), (delivery,)))
        ids.append(delivery.id)
    return ids


async def test_a_full_sample_is_counted_from_the_index(store: Store, database_url: str):
    endpoint = await _endpoint(store)
    [delivery] = await _deliveries(store, endpoint, [START_MS])
    values = []
    for n in range(10):  # odd ones succeeded, even ones failed; durations 0..9 ms
        status, error = ("200", "NULL") if n % 2 else ("NULL", "'refused'")
        values.append(
            f"('{new_id('att', START_MS + n)}', '{delivery}', 'tn_default', "
            f"'{endpoint.id}', 1, 'scheduled', {START_MS + n}, {n}, {status}, {error})"
        )
    columns = (
        "id, delivery_id, tenant_id, endpoint_id, attempt, trigger, started_at, "
        "duration_ms, status_code, error"
    )
    await rows(database_url, f"INSERT INTO attempts ({columns}) VALUES {', '.join(values)}")
    for endpoint_id in (None, endpoint.id):  # the tenant's chart and the endpoint's
        read = store.deliveries.activity
        few = await read("tn_default", endpoint_id, START_MS, START_MS + 10, 3)
        assert (few.count, len(few.sample)) == (10, 3)
        assert [d for d, _ in few.sample] == [9, 8, 7]  # the latest of the slice
        whole = await store.deliveries.activity(
            "tn_default", endpoint_id, START_MS, START_MS + 10, 50
        )
        assert (whole.count, sum(ok for _, ok in whole.sample)) == (10, 5)
        later = await store.deliveries.activity(
            "tn_default", endpoint_id, START_MS + 10, START_MS + 20, 3
        )
        assert later.count == 0
    assert (
        await store.deliveries.activity("tn_other", None, START_MS, START_MS + 10, 3)
    ).count == 0


async def test_queue_and_backlog_counts_stop_at_their_cap(store: Store):
    endpoint = await _endpoint(store)
    await _deliveries(store, endpoint, [START_MS, START_MS, None, None, None])
    assert (await store.deliveries.queue("tn_default", 100))[0] == 5
    pending, oldest = await store.deliveries.queue("tn_default", 3)
    assert (pending, oldest) == (3, START_MS)
    glance = await store.endpoints.glance(endpoint.id, 100)
    assert (glance.pending, glance.held) == (5, 3)
    assert (await store.endpoints.glance(endpoint.id, 2)).pending == 2


async def test_an_endpoints_deliveries_of_every_status_page_newest_first_each_once(
    store: Store, database_url: str
):
    endpoint = await _endpoint(store)
    ids = await _deliveries(store, endpoint, [START_MS] * 7)
    for status, chosen in (("succeeded", ids[1::3]), ("failed", ids[2::3])):
        listed = ", ".join(f"'{i}'" for i in chosen)
        await rows(
            database_url, f"UPDATE deliveries SET status = '{status}' WHERE id IN ({listed})"
        )
    seen: list[Delivery] = []
    cursor = None
    while True:
        page = await store.deliveries.of_endpoint("tn_default", endpoint.id, None, cursor, 3)
        seen += page
        if len(page) < 3:
            break
        cursor = page[-1].id
    assert [d.id for d in seen] == ids[::-1]
    failed = await store.deliveries.of_endpoint("tn_default", endpoint.id, "failed", None, 10)
    assert [d.id for d in failed] == ids[2::3][::-1]
    assert await store.deliveries.of_endpoint("tn_other", endpoint.id, None, None, 10) == []


def test_slices_shape_counts_estimates_and_percentiles():
    since, until = 0, 60_000
    edges = bounds(since, until)
    assert len(edges) == 60 and edges[0] == (0, 1000) and edges[-1][1] >= until
    slices = [Slice(lo, 0, []) for lo, _ in edges]
    slices[0] = Slice(0, 4, [(10, True), (20, True), (30, False), (40, True)])  # read whole
    slices[1] = Slice(1000, 100, [(5, True), (7, False)])  # a sample of 2 of 100
    activity = summarise(slices, since, until)
    assert activity.attempts == 104 and activity.sampled
    assert (activity.buckets[0].ok, activity.buckets[1].ok) == (3, 50)  # exact; estimated
    assert activity.success_rate == pytest.approx(53 / 104)
    assert (activity.buckets[0].p50_ms, activity.buckets[0].p99_ms) == (20.0, 40.0)
    assert activity.per_minute == pytest.approx(104.0)
    quiet = summarise([Slice(lo, 0, []) for lo, _ in edges], since, until)
    assert (quiet.attempts, quiet.success_rate, quiet.p99_ms, quiet.sampled) == (
        0,
        None,
        None,
        False,
    )
