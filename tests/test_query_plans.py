"""The pages of every long list are index ranges, not scans: SQLite's planner is asked how it
would run each bounded query (EXPLAIN QUERY PLAN on the migrated schema). A query that reads
a whole table, or sorts one, to show 50 rows would make a page slow on a store of a million
deliveries; bench/console_pages.py measures the times on both backends."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.store import open_store, queries

PARAMS = {
    "tenant_id": "tn_a", "since_id": "evt_0", "before": "evt_f", "type": None,
    "contract": None, "customer_number": "C-1", "limit": 51, "cursor": "x_f",
    "delivery_id": "dlv_1", "endpoint_id": "ep_1", "status": "pending",
    "external_contract_id": None, "lo": "att_0", "hi": "att_f", "cap": 1000,
}  # fmt: skip
EXPECTED = {
    "event_list": "events_tenant",
    "event_list_of_customer": "events_customer",
    "event_list_of_contract": "events_contract",
    "attempts_of_delivery": "attempts_delivery",
    "deliveries_of_endpoint": "deliveries_endpoint",
    "billing_list": "billing_tenant",
    "billing_list_of_customer": "billing_customer",
    "invoice_list": "invoices_list",
    "activity_sample_of_tenant": "attempts_tenant",
    "activity_count_of_tenant": "attempts_tenant",
    "activity_sample_of_endpoint": "attempts_endpoint",
    "activity_count_of_endpoint": "attempts_endpoint",
    "queue_of_tenant": "deliveries_tenant_open",
    "endpoint_glance": "deliveries_endpoint",
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    import asyncio

    path: Path = tmp_path_factory.mktemp("plans") / "h.db"

    async def migrate() -> None:
        await (await open_store(f"sqlite:///{path}", migrate_now_ms=0)).close()

    asyncio.run(migrate())
    named = queries.load("sqlite")
    with sqlite3.connect(path) as conn:
        return {
            name: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {q.sql}", q.args(PARAMS))]
            for name, q in ((n, named[n]) for n in EXPECTED)
        }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_page_is_a_range_of_its_index(plans: dict[str, list[str]], name: str):
    steps = plans[name]
    assert any(EXPECTED[name] in step for step in steps), steps
    one_row = ("SCAN b", "SCAN a LEFT-JOIN")  # endpoint_glance's one-row subqueries
    whole = [s for s in steps if s.startswith("SCAN ") and s not in one_row
             and not s.startswith(("SCAN CONSTANT", "SCAN open_rows"))]  # fmt: skip
    assert not whole, steps  # no table read whole
    assert not any("TEMP B-TREE FOR ORDER BY" in s for s in steps), steps  # nor sorted
