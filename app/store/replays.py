"""Replay jobs: a cursor over events, advanced in paced batches by the worker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from app.records import Event, NewEvent, Replay
from app.store.connector import Connector, Row, Tx
from app.store.events import insert_deliveries, promote_next
from app.store.rows import from_row


def _replay(row: Row) -> Replay:
    types = row["event_types"]
    return from_row(
        Replay,
        row,
        only_failed=bool(row["only_failed"]),
        event_types=None if types is None else tuple(orjson.loads(types)),
    )


def _candidate(row: Row) -> Event:
    """An event's routing fields only: a replay never needs the bodies it re-sends."""
    return Event(
        id=row["id"],
        tenant_id=row["tenant_id"],
        type=row["type"],
        body=b"",
        created_at=row["created_at"],
        customer_number=row["customer_number"],
        external_contract_id=row["external_contract_id"],
        ordering_key=row["ordering_key"],
        about_endpoint_id=row["about_endpoint_id"],
    )


class Replays:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def create(self, replay: Replay) -> None:
        async def work(tx: Tx) -> None:
            await tx.execute(
                "replay_insert",
                {
                    "id": replay.id,
                    "tenant_id": replay.tenant_id,
                    "endpoint_id": replay.endpoint_id,
                    "since": replay.since,
                    "until": replay.until,
                    "only_failed": replay.only_failed,
                    "event_types": None
                    if replay.event_types is None
                    else orjson.dumps(replay.event_types).decode(),
                    "rate_per_s": replay.rate_per_s,
                    "matched": replay.matched,
                    "now": replay.created_at,
                },
            )

        await self._db.transact(work)

    async def get(self, tenant_id: str, replay_id: str) -> Replay | None:
        row = await self._db.fetchrow("replay_get", {"id": replay_id, "tenant_id": tenant_id})
        return _replay(row) if row else None

    async def find(self, replay_id: str) -> Replay | None:
        """By id alone, whatever the tenant: for operator tools holding the database."""
        row = await self._db.fetchrow("replay_by_id", {"id": replay_id})
        return _replay(row) if row else None

    async def page(self, tenant_id: str, cursor: str | None, limit: int) -> list[Replay]:
        params = {"tenant_id": tenant_id, "cursor": cursor, "limit": limit}
        return [_replay(r) for r in await self._db.fetch("replay_list", params)]

    async def progress(self, replay_id: str) -> dict[str, int]:
        rows = await self._db.fetch("replay_progress", {"id": replay_id})
        return {r["status"]: int(r["n"]) for r in rows}

    async def counts(
        self, tenant_id: str, endpoint_id: str, since_id: str, until_id: str, which: str
    ) -> list[tuple[Event, int]]:
        """(routing fields, how many) per distinct routing, of `which` events: all, failed
        (for good) or held (by the endpoint's circuit); callers apply the subscription."""
        params = {
            "tenant_id": tenant_id,
            "endpoint_id": endpoint_id,
            "since_id": since_id,
            "until_id": until_id,
        }
        rows = await self._db.fetch(f"replay_count_{which}", params)
        return [
            (
                Event(
                    "",
                    tenant_id,
                    r["type"],
                    b"",
                    0,
                    customer_number=r["customer_number"],
                    external_contract_id=r["external_contract_id"],
                    about_endpoint_id=r["about_endpoint_id"],
                ),
                int(r["n"]),
            )
            for r in rows
        ]

    async def candidates(
        self, tenant_id: str, after: str, until_id: str, limit: int
    ) -> list[Event]:
        params = {"tenant_id": tenant_id, "after": after, "until_id": until_id, "limit": limit}
        return [_candidate(r) for r in await self._db.fetch("replay_events", params)]

    async def failed_among(self, endpoint_id: str, event_ids: Sequence[str]) -> set[str]:
        params = {"endpoint_id": endpoint_id, "ids": self._db.ids(event_ids)}
        return {r["id"] for r in await self._db.fetch("replay_failed_filter", params)}

    async def claim(self, now: int, lease_until: int, limit: int) -> list[Replay]:
        async def work(tx: Tx) -> list[Row]:
            params = {"now": now, "lease_until": lease_until, "limit": limit}
            return await tx.fetch("replays_claim", params)

        return [_replay(r) for r in await self._db.transact(work, durable=False)]

    async def advance(
        self, replay: Replay, lease: int, batch: Sequence[NewEvent], now: int
    ) -> bool:
        """The batch's deliveries and the job's new cursor, pace and status, together: a job
        resumes exactly here. False (and nothing written) if the job was cancelled or its
        lease taken over meanwhile; `replay.next_run_at` is the new one, `lease` the held one.
        """

        async def work(tx: Tx) -> bool:
            params = {
                "id": replay.id,
                "cursor": replay.cursor,
                "enqueued": replay.enqueued,
                "next_run_at": replay.next_run_at,
                "paced_until": replay.paced_until,
                "status": replay.status,
                "now": now,
                "lease_until": lease,
            }
            if not await tx.fetch("replay_advance", params):
                return False
            await insert_deliveries(tx, batch)
            return True

        # Atomic, not necessarily fsynced: a batch lost in a crash is lost with its cursor
        # move, so the job enqueues it again; no fsync keeps live traffic's commits quick.
        return await self._db.transact(work, durable=False)

    async def adopt_held(
        self,
        replay_id: str,
        endpoint_id: str,
        since_id: str,
        until_id: str,
        types: Sequence[str] | None,
    ) -> None:
        """What the endpoint's circuit holds in the window joins the replay's progress; it goes
        out when the circuit closes (the replay probes the endpoint at once)."""

        async def work(tx: Tx) -> None:
            params = {"replay_id": replay_id, "endpoint_id": endpoint_id, "since_id": since_id,
                      "until_id": until_id,
                      "types": None if types is None else self._db.ids(types)}  # fmt: skip
            await tx.execute("replay_adopt_held", params)

        await self._db.transact(work)

    async def cancel(self, tenant_id: str, replay_id: str, now: int) -> bool:
        """Stop enqueueing and cancel what the replay enqueued and is still pending (held
        deliveries it adopted only leave it); ordered keys move on."""

        async def work(tx: Tx) -> bool:
            params = {"id": replay_id, "tenant_id": tenant_id, "now": now}
            if not await tx.fetch("replay_cancel", params):
                return False
            await tx.execute("replay_release_adopted", {"id": replay_id})
            cancelled = await tx.fetch("replay_cancel_deliveries", {"id": replay_id, "now": now})
            keys = {(r["endpoint_id"], r["ordering_key"]) for r in cancelled if r["ordering_key"]}
            for endpoint_id, key in sorted(keys):
                await promote_next(tx, endpoint_id, key, now, now)
            return True

        return await self._db.transact(work)

    async def add_deliveries(self, batch: Sequence[NewEvent]) -> None:
        """Fresh deliveries of stored events (replaying one event)."""

        async def work(tx: Tx) -> Any:
            await insert_deliveries(tx, batch)

        await self._db.transact(work)
