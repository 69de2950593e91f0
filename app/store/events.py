"""Events and their fan-out rows, written through group commit (the transactional outbox)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from app.ids import id_ceiling, id_floor
from app.records import Event, Inserted, NewDelivery, NewEvent
from app.store.batch import GroupCommit, written
from app.store.billing_rows import billing_columns
from app.store.connector import Connector, IntegrityError, Row, Tx
from app.store.rows import from_row, to_row

CEILING = id_ceiling("evt")


def event_from_row(row: Row) -> Event:
    return from_row(Event, row, body=bytes(row["body"]))


def _event_columns(e: Event) -> dict[str, Any]:
    return to_row(e)


def delivery_row(new: NewEvent, d: NewDelivery, queued: bool) -> dict[str, Any]:
    return {
        "id": d.id,
        "tenant_id": new.event.tenant_id,
        "event_id": new.event.id,
        "endpoint_id": d.endpoint_id,
        "trigger": d.trigger,
        "status": d.status,
        "next_attempt_at": None if queued else d.next_attempt_at,
        "created_at": new.event.created_at,
        "replay_id": d.replay_id,
        "ordering_key": d.ordering_key,
        "queued": queued,
    }


async def insert_events(
    tx: Tx, batch: Sequence[NewEvent], existing: dict[tuple[str, str], Event]
) -> list[Inserted]:
    """Write events, their deliveries and billing rows; keys already in `existing` are repeats.

    A delivery to an ordered endpoint waits (queued) while an earlier delivery of its ordering
    key is unfinished, including one earlier in this very batch.
    """
    busy: set[tuple[str, str]] = set()

    async def rows_of(new: NewEvent) -> list[dict[str, Any]]:
        return await _delivery_rows(tx, new, busy)

    results, written = await _planned(batch, existing, rows_of)
    await tx.insert(written, then="notify_due" if written["delivery_insert"] else None)
    return results


async def write_events(db: Connector, batch: Sequence[NewEvent]) -> list[Inserted] | None:
    """The same rows written at once, trusting the unique index to refuse a repeated key (an
    IntegrityError: the caller looks the keys up and writes again). None when a delivery is
    ordered: whether it waits is read under a lock, in a transaction."""
    if any(d.ordering_key is not None for new in batch for d in new.deliveries):
        return None

    async def rows_of(new: NewEvent) -> list[dict[str, Any]]:
        return [delivery_row(new, d, queued=False) for d in new.deliveries]

    results, written = await _planned(batch, {}, rows_of)
    await db.write(written, then="notify_due" if written["delivery_insert"] else None)
    return results


async def _planned(
    batch: Sequence[NewEvent],
    existing: dict[tuple[str, str], Event],
    rows_of: Callable[[NewEvent], Awaitable[list[dict[str, Any]]]],
) -> tuple[list[Inserted], dict[str, list[dict[str, Any]]]]:
    """Each item's answer and the rows to write; a key seen earlier in the batch is a repeat."""
    results: list[Inserted] = []
    events, deliveries, billing = [], [], []
    for new in batch:
        key = new.event.idempotency_key
        if key is not None:
            if (new.event.tenant_id, key) in existing:
                results.append(Inserted(existing[(new.event.tenant_id, key)], False, None))
                continue
            existing[(new.event.tenant_id, key)] = new.event
        events.append(_event_columns(new.event))
        deliveries += await rows_of(new)
        if new.billing is not None:
            billing.append(billing_columns(new.billing))
        results.append(Inserted(new.event, created=True, deliveries=len(new.deliveries)))
    written = {"event_insert": events, "delivery_insert": deliveries, "billing_insert": billing}
    return results, written


async def insert_deliveries(tx: Tx, batch: Sequence[NewEvent]) -> None:
    """More deliveries of events already stored (replays)."""
    busy: set[tuple[str, str]] = set()
    rows: list[dict[str, Any]] = []
    for new in batch:
        rows += await _delivery_rows(tx, new, busy)
    await tx.insert({"delivery_insert": rows}, then="notify_due" if rows else None)


async def _delivery_rows(tx: Tx, new: NewEvent, busy: set[tuple[str, str]]) -> list[dict[str, Any]]:
    rows = []
    for d in new.deliveries:
        queued = d.ordering_key is not None and await _waits(tx, d, busy)
        rows.append(delivery_row(new, d, queued))
    return rows


async def _waits(tx: Tx, d: NewDelivery, busy: set[tuple[str, str]]) -> bool:
    assert d.ordering_key is not None
    key = (d.endpoint_id, d.ordering_key)
    if key not in busy:
        params = {"endpoint_id": d.endpoint_id, "key": d.ordering_key}
        await tx.execute("ordered_lock", params)
        if await tx.fetchrow("ordered_busy", params) is None:
            busy.add(key)
            return False
    busy.add(key)
    return True


async def promote_next(tx: Tx, endpoint_id: str, key: str, due: int | None, now: int) -> None:
    """Its head finished: the next delivery of an ordering key goes (due at `due`, or held).
    Locked like the check-then-insert above, so a delivery an API process is queueing behind
    the head right now is seen and promoted, never left waiting for a head that is gone."""
    params = {"endpoint_id": endpoint_id, "key": key, "due": due, "now": now}
    await tx.execute("ordered_lock", params)
    await tx.execute("ordered_promote", params)


class Events:
    def __init__(self, db: Connector) -> None:
        self._db = db
        self._commit: GroupCommit[NewEvent, Inserted] = GroupCommit(
            db, self._insert_batch, direct=self._write_batch
        )

    async def insert(self, new: NewEvent) -> Inserted:
        """Committed (event and deliveries) when this returns; an idempotency key already used by
        the tenant returns the original event with created=False and writes nothing."""
        return await self._commit.submit(new)

    async def insert_many(self, batch: list[NewEvent]) -> list[Inserted]:
        """A whole batch in one transaction of its own (bulk ingest), written at once unless a
        key is already stored; then its keys are read first, in the transaction. Should
        another process commit one of its keys meanwhile, the items go through the group
        commit one by one instead, which reads that key and answers a repeat."""
        try:
            return await written(self._db, self._insert_batch, self._write_batch, batch)
        except IntegrityError:
            return [await self.insert(new) for new in batch]

    async def close(self) -> None:
        await self._commit.close()

    async def _write_batch(self, batch: list[NewEvent]) -> list[Inserted] | None:
        return await write_events(self._db, batch)

    async def _insert_batch(self, tx: Tx, batch: list[NewEvent]) -> list[Inserted]:
        return await insert_events(tx, batch, await self._existing(tx, batch))

    async def _existing(self, tx: Tx, batch: list[NewEvent]) -> dict[tuple[str, str], Event]:
        keys: dict[str, list[str]] = defaultdict(list)
        for new in batch:
            if new.event.idempotency_key is not None:
                keys[new.event.tenant_id].append(new.event.idempotency_key)
        found: dict[tuple[str, str], Event] = {}
        for tenant_id, values in keys.items():
            params = {"tenant_id": tenant_id, "keys": self._db.ids(values)}
            for row in await tx.fetch("events_by_keys", params):
                found[(tenant_id, row["idempotency_key"])] = event_from_row(row)
        return found

    async def get(self, tenant_id: str, event_id: str) -> Event | None:
        row = await self._db.fetchrow("event_get", {"id": event_id, "tenant_id": tenant_id})
        return event_from_row(row) if row else None

    async def by_idempotency_key(self, tenant_id: str, key: str) -> Event | None:
        row = await self._db.fetchrow("event_by_key", {"tenant_id": tenant_id, "key": key})
        return event_from_row(row) if row else None

    async def delivery_count(self, event_id: str) -> int:
        row = await self._db.fetchrow("event_delivery_count", {"event_id": event_id})
        return int(row["n"]) if row else 0

    async def page(self, tenant_id: str, filters: dict[str, Any], limit: int) -> list[Event]:
        """Newest first. `cursor` and `until_id` are both upper bounds (the lower one holds);
        a customer or a contract reads its own index."""
        given = {k: v for k, v in filters.items() if v is not None}
        before = min(given.pop("cursor", CEILING), given.pop("until_id", CEILING))
        params = {"tenant_id": tenant_id, "since_id": id_floor("evt", 0), "before": before,
                  "type": None, "contract": None, "limit": limit, **given}  # fmt: skip
        query = "event_list"
        if "customer_number" in given:
            query = "event_list_of_customer"
        elif "contract" in given:
            query = "event_list_of_contract"
        return [event_from_row(r) for r in await self._db.fetch(query, params)]

    async def by_transaction(self, tenant_id: str, transaction_id: str) -> Event | None:
        """The event of the billing information with this transactionId."""
        params = {"tenant_id": tenant_id, "transaction_id": transaction_id}
        row = await self._db.fetchrow("event_by_transaction", params)
        return event_from_row(row) if row else None

    async def types_of(self, tenant_id: str) -> list[str]:
        rows = await self._db.fetch("recent_event_types_of_tenant", {"tenant_id": tenant_id})
        return [str(r["type"]) for r in rows]
