"""Deliveries are the queue: claim with a lease, record outcomes in batches, release on stop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.records import Attempt, Delivery, Finished, Job
from app.store.connector import Connector, Row, Tx


def delivery_from_row(row: Row) -> Delivery:
    return Delivery(
        id=row["id"],
        tenant_id=row["tenant_id"],
        event_id=row["event_id"],
        endpoint_id=row["endpoint_id"],
        status=row["status"],
        trigger=row["trigger"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def attempt_from_row(row: Row) -> Attempt:
    return Attempt(
        id=row["id"],
        delivery_id=row["delivery_id"],
        attempt=row["attempt"],
        trigger=row["trigger"],
        started_at=row["started_at"],
        duration_ms=row["duration_ms"],
        status_code=row["status_code"],
        error=row["error"],
        response_body=row["response_body"],
    )


def job_from_row(row: Row, now: int) -> Job:
    secrets = [row["secret"]]
    expires = row["previous_secret_expires_at"]
    if row["previous_secret"] and expires is not None and expires > now:
        secrets.append(row["previous_secret"])
    return Job(
        delivery_id=row["delivery_id"],
        tenant_id=row["tenant_id"],
        event_id=row["event_id"],
        endpoint_id=row["endpoint_id"],
        event_type=row["event_type"],
        attempts=row["attempts"],
        trigger=row["trigger"],
        lease_until=row["lease_until"],
        url=row["url"],
        body=bytes(row["body"]),
        secrets=tuple(secrets),
    )


def _attempt_row(f: Finished) -> dict[str, Any]:
    a = f.attempt
    return {
        "id": a.id,
        "delivery_id": a.delivery_id,
        "tenant_id": f.job.tenant_id,
        "attempt": a.attempt,
        "trigger": a.trigger,
        "started_at": a.started_at,
        "duration_ms": a.duration_ms,
        "status_code": a.status_code,
        "error": a.error,
        "response_body": a.response_body,
    }


def _finish_row(f: Finished, now: int) -> dict[str, Any]:
    return {
        "id": f.job.delivery_id,
        "status": f.status,
        "next_attempt_at": f.next_attempt_at,
        "status_code": f.attempt.status_code,
        "error": f.attempt.error,
        "now": now,
        "lease_until": f.job.lease_until,
    }


class Deliveries:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def turn(
        self, finished: Sequence[Finished], now: int, lease_until: int, limit: int
    ) -> list[Job]:
        """Record finished attempts and claim up to `limit` due deliveries, in one transaction.

        Recording: every attempt is inserted (it happened); a delivery moves on only while the
        lease is still this worker's (not re-claimed after expiry, nor cancelled meanwhile).
        Claiming: due deliveries and ones whose lease ran out, leased until `lease_until`.
        The commit skips the fsync (durable=False): a power cut that loses it only re-sends.
        """

        async def work(tx: Tx) -> list[str]:
            if finished:
                await tx.executemany("attempt_insert", [_attempt_row(f) for f in finished])
                await tx.executemany("delivery_finish", [_finish_row(f, now) for f in finished])
            if not limit:
                return []
            params = {"now": now, "lease_until": lease_until, "limit": limit}
            return [r["id"] for r in await tx.fetch("deliveries_claim", params)]

        if not finished and not limit:
            return []
        ids = await self._db.transact(work, durable=False)
        if not ids:
            return []
        rows = await self._db.fetch("jobs_by_ids", {"ids": self._db.ids(ids)})
        return [job_from_row(r, now) for r in rows]

    async def claim(self, now: int, lease_until: int, limit: int) -> list[Job]:
        return await self.turn((), now, lease_until, limit)

    async def record(self, finished: Sequence[Finished], now: int) -> None:
        await self.turn(finished, now, now, 0)

    async def release(self, jobs: Sequence[Job], now: int) -> None:
        """Hand unsent claimed deliveries back at once (graceful stop), not after the lease."""

        async def work(tx: Tx) -> None:
            rows = [{"id": j.delivery_id, "now": now, "lease_until": j.lease_until} for j in jobs]
            await tx.executemany("delivery_release", rows)

        if jobs:
            await self._db.transact(work)

    async def oldest_due(self, now: int) -> int | None:
        """When the longest-waiting due delivery became due (an index lookup, not a count)."""
        row = await self._db.fetchrow("oldest_due", {"now": now})
        return None if row is None or row["due"] is None else int(row["due"])

    async def of_event(self, tenant_id: str, event_id: str) -> list[Delivery]:
        params = {"tenant_id": tenant_id, "event_id": event_id}
        return [delivery_from_row(r) for r in await self._db.fetch("deliveries_of_event", params)]

    async def get(self, tenant_id: str, delivery_id: str) -> Delivery | None:
        row = await self._db.fetchrow("delivery_get", {"id": delivery_id, "tenant_id": tenant_id})
        return delivery_from_row(row) if row else None

    async def attempts(
        self, tenant_id: str, delivery_id: str, cursor: str | None, limit: int
    ) -> list[Attempt]:
        params = {
            "tenant_id": tenant_id,
            "delivery_id": delivery_id,
            "cursor": cursor,
            "limit": limit,
        }
        return [attempt_from_row(r) for r in await self._db.fetch("attempts_of_delivery", params)]
