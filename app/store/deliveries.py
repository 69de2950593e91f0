"""Deliveries are the queue: claim with a lease, record outcomes in batches, release on stop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.activity import Slice
from app.destinations import Destination
from app.ids import id_ceiling, id_floor
from app.records import DELIVERY_STATUSES, Attempt, Delivery, Finished, Job
from app.sealing import Sealer
from app.store import outcomes
from app.store.connector import Connector, Row, Tx
from app.store.endpoints import Secrets
from app.store.outcomes import Rules
from app.store.rows import from_row


def delivery_from_row(row: Row) -> Delivery:
    return from_row(Delivery, row)


def attempt_from_row(row: Row) -> Attempt:
    return from_row(Attempt, row)


def job_from_row(row: Row, now: int, sealed: Secrets) -> Job:
    destination = None
    if row["endpoint_type"] != "webhook" or row["format"] != "standard":
        destination = Destination(
            row["endpoint_type"], row["url"], orjson.loads(row["config"]),
            sealed.open(row["credentials"]), row["format"], row["cloudevents_mode"],
        )  # fmt: skip
    secrets = [sealed.open(row["secret"])]
    expires = row["previous_secret_expires_at"]
    if row["previous_secret"] and expires is not None and expires > now:
        secrets.append(sealed.open(row["previous_secret"]))
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
        ordering_key=row["ordering_key"],
        rate_limit_per_s=row["rate_limit_per_s"],
        destination=destination,
        event_time=row["event_time"],
        subject=row["customer_number"],
    )


@dataclass(frozen=True, slots=True)
class Claim:
    """How much to claim: `limit` in all, at most `free[endpoint]` (else `cap`) per endpoint,
    none for `excluded` endpoints (saturated or rate-limited in this worker)."""

    limit: int
    cap: int = 8
    excluded: tuple[str, ...] = ()
    free: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Turn:
    jobs: list[Job]
    endpoints_changed: bool  # an endpoint's health or status moved: drop endpoint caches


class Deliveries:
    def __init__(self, db: Connector, sealer: Sealer | None = None) -> None:
        self._db = db
        self._secrets = Secrets(sealer)

    async def turn(
        self,
        finished: Sequence[Finished],
        now: int,
        lease_until: int,
        claim: Claim,
        rules: Rules | None = None,
    ) -> Turn:
        """Record finished attempts (app/store/outcomes.py) and claim due deliveries, in one
        transaction committed without fsync: a power cut that loses it only re-sends.

        Claimed: first attempts and replays before retries, oldest first, within each
        endpoint's room, leased until `lease_until`; expired leases are claimable again.
        """

        if finished and rules is None:
            raise ValueError("recording outcomes needs the endpoint health rules")
        if not finished and not claim.limit:
            return Turn([], False)
        rows, changed = await self._db.transact(
            lambda tx: self._turn(tx, finished, now, lease_until, claim, rules), durable=False
        )
        if rows and self._db.dialect != "postgres":
            # SQLite's UPDATE … RETURNING cannot feed a join; its reads cost no round trip
            ids = self._db.ids([r["id"] for r in rows])
            rows = await self._db.fetch("jobs_by_ids", {"ids": ids})
        return Turn([job_from_row(r, now, self._secrets) for r in rows], changed)

    async def _turn(
        self,
        tx: Tx,
        finished: Sequence[Finished],
        now: int,
        lease_until: int,
        claim: Claim,
        rules: Rules | None,
    ) -> tuple[list[Row], bool]:
        """Judge, write, settle, claim. On PostgreSQL the attempts and their deliveries are
        written by the claiming statement itself when nothing else in the turn reads them."""
        plan = await outcomes.judge(tx, finished, now, rules) if finished and rules else None
        params = self._claim_params(claim, now, lease_until)
        together = self._db.dialect == "postgres" and (plan is None or plan.deferrable)
        if plan is not None and not together:
            await outcomes.write(tx, plan)
        changed = await outcomes.settle(tx, plan, now) if plan is not None else False
        if together:
            params |= outcomes.arrays(plan)
        elif not claim.limit:
            return [], changed
        return await tx.fetch("deliveries_claim", params), changed

    def _claim_params(self, claim: Claim, now: int, lease_until: int) -> dict[str, Any]:
        return {
            "now": now,
            "lease_until": lease_until,
            "limit": claim.limit,
            "scan": 2 * claim.limit,
            "cap": claim.cap,
            "excluded": self._db.ids(claim.excluded),
            "free": orjson.dumps(dict(claim.free)).decode(),
        }

    async def claim(self, now: int, lease_until: int, limit: int) -> list[Job]:
        """Claim without recording (tests, tools)."""
        return (await self.turn((), now, lease_until, Claim(limit, cap=limit))).jobs

    async def record(self, finished: Sequence[Finished], now: int, rules: Rules) -> None:
        await self.turn(finished, now, now, Claim(0), rules)

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

    async def of_endpoint(
        self, tenant_id: str, endpoint_id: str, status: str | None, cursor: str | None, limit: int
    ) -> list[Delivery]:
        """Newest first; every status is its own index range, merged here (a sort over all an
        endpoint's deliveries would read a million rows for one page)."""
        found: list[Delivery] = []
        for one in (status,) if status else DELIVERY_STATUSES:
            params = {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "status": one,
                      "cursor": cursor or id_ceiling("dlv"), "limit": limit}  # fmt: skip
            rows = await self._db.fetch("deliveries_of_endpoint", params)
            found.extend(delivery_from_row(r) for r in rows)
        return sorted(found, key=lambda d: d.id, reverse=True)[:limit]

    async def activity(
        self, tenant_id: str, endpoint_id: str | None, lo: int, hi: int, sample: int
    ) -> Slice:
        """Attempts started in [lo, hi): the latest `sample` of them as (duration, ok), and
        how many there were (counted from the index only when the sample is full)."""
        if endpoint_id is None:
            kind = "tenant"
            params: dict[str, Any] = {"tenant_id": tenant_id, "lo": id_floor("att", lo),
                                      "hi": id_floor("att", hi)}  # fmt: skip
        else:
            kind, params = "endpoint", {"endpoint_id": endpoint_id, "lo": lo, "hi": hi}
        rows = await self._db.fetch(f"activity_sample_of_{kind}", {**params, "limit": sample})
        count = len(rows)
        if count >= sample:
            row = await self._db.fetchrow(f"activity_count_of_{kind}", params)
            count = int(row["n"]) if row else count
        return Slice(lo, count, [(int(r["duration_ms"]), r["error"] is None) for r in rows])

    async def queue(self, tenant_id: str, cap: int) -> tuple[int, int | None]:
        """Deliveries not finished (counted up to `cap`), and when the oldest was created."""
        row = await self._db.fetchrow("queue_of_tenant", {"tenant_id": tenant_id, "cap": cap})
        return (0, None) if row is None else (int(row["pending"]), row["oldest"])

    async def statuses_of_events(
        self, tenant_id: str, event_ids: Sequence[str]
    ) -> dict[str, dict[str, int]]:
        """Event id → {delivery status: count}, for a page of events (one query)."""
        params = {"tenant_id": tenant_id, "ids": self._db.ids(event_ids)}
        found: dict[str, dict[str, int]] = {}
        for row in await self._db.fetch("delivery_statuses_of_events", params):
            found.setdefault(row["event_id"], {})[row["status"]] = int(row["n"])
        return found

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
            "cursor": cursor or id_ceiling("att"),
            "limit": limit,
        }
        return [attempt_from_row(r) for r in await self._db.fetch("attempts_of_delivery", params)]
