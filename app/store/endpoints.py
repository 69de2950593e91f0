"""Endpoints (webhook subscriptions); every change bumps a counter that invalidates caches."""

from __future__ import annotations

from typing import Any, overload

import orjson

from app import jsoncodec
from app.records import Endpoint, Glance
from app.sealing import Sealer, SealError
from app.store.connector import Connector, Row, Tx
from app.store.rows import from_row, to_row


class Secrets:
    """Endpoint secrets sealed on their way in and opened on their way out (app/sealing.py)."""

    def __init__(self, sealer: Sealer | None) -> None:
        self._sealer = sealer

    def seal(self, plain: str | None) -> str | None:
        return None if plain is None else self._required().seal(plain)

    @overload
    def open(self, stored: str) -> str: ...
    @overload
    def open(self, stored: None) -> None: ...
    def open(self, stored: str | None) -> str | None:
        return None if stored is None else self._required().open(stored)

    def _required(self) -> Sealer:
        if self._sealer is None:
            raise SealError("this store was opened without BILLHOOK_SECRET_KEY")
        return self._sealer


def endpoint_from_row(row: Row, secrets: Secrets | None) -> Endpoint:
    """With `secrets` None the endpoint's secrets stay empty: for matching events only."""
    event_types = row["event_types"]
    filter_ = {}
    if row["filter_customer_number"] is not None:
        filter_["customerNumber"] = row["filter_customer_number"]
    if row["filter_external_contract_id"] is not None:
        filter_["externalContractId"] = row["filter_external_contract_id"]
    return from_row(
        Endpoint,
        row,
        event_types=tuple(orjson.loads(event_types)) if event_types is not None else None,
        filter=filter_,
        metadata=jsoncodec.loads(row["metadata"]),
        ordered=bool(row["ordered"]),
        secret=secrets.open(row["secret"]) if secrets else "",
        previous_secret=secrets.open(row["previous_secret"]) if secrets else None,
        config=jsoncodec.loads(row["config"]),
        credentials=secrets.open(row["credentials"]) if secrets else None,
    )


def _columns(ep: Endpoint, secrets: Secrets) -> dict[str, Any]:
    return to_row(
        ep,
        event_types=None if ep.event_types is None else orjson.dumps(ep.event_types).decode(),
        filter_customer_number=ep.filter.get("customerNumber"),
        filter_external_contract_id=ep.filter.get("externalContractId"),
        metadata=jsoncodec.dumps(ep.metadata).decode(),
        secret=secrets.seal(ep.secret),
        previous_secret=secrets.seal(ep.previous_secret),
        config=jsoncodec.dumps(ep.config).decode(),
        credentials=secrets.seal(ep.credentials),
    )


class Endpoints:
    def __init__(self, db: Connector, sealer: Sealer | None = None) -> None:
        self._db = db
        self.secrets = Secrets(sealer)

    async def create(self, endpoint: Endpoint) -> None:
        async def work(tx: Tx) -> None:
            params = _columns(endpoint, self.secrets)
            del params["disabled_reason"]
            await tx.execute("endpoint_insert", params)
            await tx.execute("counter_bump", {"name": "endpoints"})

        await self._db.transact(work)

    async def get(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        row = await self._db.fetchrow("endpoint_get", {"id": endpoint_id, "tenant_id": tenant_id})
        return endpoint_from_row(row, self.secrets) if row else None

    async def page(self, tenant_id: str, cursor: str | None, limit: int) -> list[Endpoint]:
        params = {"tenant_id": tenant_id, "cursor": cursor, "limit": limit}
        rows = await self._db.fetch("endpoint_list", params)
        return [endpoint_from_row(r, self.secrets) for r in rows]

    async def needing_attention(self, tenant_id: str, limit: int) -> list[Endpoint]:
        """Failing or disabled, newest first."""
        params = {"tenant_id": tenant_id, "limit": limit}
        rows = await self._db.fetch("endpoints_needing_attention", params)
        return [endpoint_from_row(r, self.secrets) for r in rows]

    async def probe(self, now: int, lease_until: int, limit: int = 100) -> int:
        """Failing endpoints whose probe is due: let one held delivery of each go now.

        `probe_at` moves to `lease_until` meanwhile, so a probe that never reports back (a
        killed worker) is followed by another after the lease rather than never.
        """

        async def work(tx: Tx) -> int:
            params = {"now": now, "lease_until": lease_until, "limit": limit}
            probed = 0
            for row in await tx.fetch("endpoints_probe_due", params):
                released = await tx.fetch(
                    "deliveries_probe", {"endpoint_id": row["id"], "now": now}
                )
                probed += len(released)
            return probed

        return await self._db.transact(work)

    async def probe_now(self, endpoint_id: str, now: int) -> None:
        """A failing endpoint's next probe is due now rather than at its next backoff step."""

        async def work(tx: Tx) -> None:
            await tx.execute("endpoint_probe_now", {"id": endpoint_id, "now": now})

        await self._db.transact(work)

    async def find(self, endpoint_id: str) -> Endpoint | None:
        """By id alone, whatever the tenant: for operator tools holding the database."""
        row = await self._db.fetchrow("endpoint_by_id", {"id": endpoint_id})
        return endpoint_from_row(row, self.secrets) if row else None

    async def attempt_stats(self, endpoint_id: str, since: int) -> dict[str, Any]:
        """Attempts since `since`: count, successes, and duration average, p50 and p95."""
        params = {"endpoint_id": endpoint_id, "since": since}
        row = await self._db.fetchrow("endpoint_attempt_stats", params)
        stats: dict[str, Any] = {
            "attempts": 0,
            "ok": 0,
            "avg_ms": None,
            "p50_ms": None,
            "p95_ms": None,
        }
        if row is None or not row["attempts"]:
            return stats
        stats.update(attempts=int(row["attempts"]), ok=int(row["ok"]), avg_ms=row["avg_ms"])
        for name, q in (("p50_ms", 0.50), ("p95_ms", 0.95)):
            offset = min(int(stats["attempts"] * q), stats["attempts"] - 1)
            found = await self._db.fetchrow(
                "endpoint_attempt_duration_at", params | {"offset": offset}
            )
            stats[name] = found["duration_ms"] if found else None
        return stats

    async def glance(self, endpoint_id: str, cap: int) -> Glance:
        """What a list row shows; pending, held and the next retry from at most `cap`
        pending deliveries."""
        row = await self._db.fetchrow("endpoint_glance", {"endpoint_id": endpoint_id, "cap": cap})
        if row is None:
            return Glance()
        return from_row(Glance, row, pending=int(row["pending"]), held=int(row["held"]))

    async def backlog(self, endpoint_id: str) -> dict[str, Any]:
        """Pending deliveries: how many, how many held, the oldest, keys blocked (ordered)."""
        row = await self._db.fetchrow("endpoint_backlog", {"endpoint_id": endpoint_id})
        assert row is not None
        return {
            "pending": int(row["pending"]),
            "held": int(row["held"]),
            "oldest": row["oldest"],
            "blocked": int(row["blocked"]),
        }

    async def of_tenant(self, tenant_id: str) -> list[Endpoint]:
        rows = await self._db.fetch("endpoints_of_tenant", {"tenant_id": tenant_id})
        return [endpoint_from_row(r, self.secrets) for r in rows]

    async def update(self, before: Endpoint, after: Endpoint) -> None:
        """Write `after`; disabling holds the endpoint's pending deliveries, enabling resets its
        health and releases everything held (a catch-up; ordered keys stay in order)."""

        async def work(tx: Tx) -> None:
            columns = _columns(after, self.secrets)
            await tx.execute("endpoint_update", columns)
            await tx.execute("counter_bump", {"name": "endpoints"})
            scope = {"endpoint_id": after.id, "now": after.updated_at}
            if before.status != "disabled" and after.status == "disabled":
                await tx.execute("deliveries_hold_for_endpoint", scope)
            elif before.status == "disabled" and after.status != "disabled":
                await tx.execute("endpoint_health_reset", {"id": after.id})
                await tx.execute("deliveries_release_for_endpoint", scope)

        await self._db.transact(work)

    async def rotate(self, endpoint: Endpoint, secret: str, expires_at: int, now: int) -> None:
        async def work(tx: Tx) -> None:
            params = {
                "id": endpoint.id,
                "tenant_id": endpoint.tenant_id,
                "secret": self.secrets.seal(secret),
                "expires_at": expires_at,
                "now": now,
            }
            await tx.execute("endpoint_rotate", params)
            await tx.execute("counter_bump", {"name": "endpoints"})

        await self._db.transact(work)

    async def cancel_pending(self, endpoint_id: str, now: int) -> int:
        """Cancel the endpoint's pending (due or held) deliveries; how many. In flight ones
        finish: their answer is already on its way."""

        async def work(tx: Tx) -> int:
            params = {"endpoint_id": endpoint_id, "now": now}
            return len(await tx.fetch("deliveries_cancel_held", params))

        return await self._db.transact(work)

    async def delete(self, tenant_id: str, endpoint_id: str, now: int) -> bool:
        """Soft delete: history stays readable; pending deliveries are cancelled."""

        async def work(tx: Tx) -> bool:
            params = {"id": endpoint_id, "tenant_id": tenant_id, "now": now}
            if not await tx.fetch("endpoint_delete", params):
                return False
            await tx.execute(
                "deliveries_cancel_for_endpoint", {"endpoint_id": endpoint_id, "now": now}
            )
            await tx.execute("counter_bump", {"name": "endpoints"})
            return True

        return await self._db.transact(work)

    async def renew_lease(self, tenant_id: str, endpoint_id: str, now: int) -> int | None:
        """The lease's new end; None when the endpoint has no live lease."""

        async def work(tx: Tx) -> int | None:
            params = {"id": endpoint_id, "tenant_id": tenant_id, "now": now}
            row = await tx.fetchrow("endpoint_lease_renew", params)
            return None if row is None else int(row["lease_until"])

        return await self._db.transact(work)

    async def lapse_leases(self, now: int) -> int:
        """Disable temporary endpoints whose lease lapsed and cancel what they kept."""

        async def work(tx: Tx) -> int:
            lapsed = await tx.fetch("endpoint_leases_lapse", {"now": now})
            for row in lapsed:
                params = {"endpoint_id": row["id"], "now": now}
                await tx.execute("deliveries_cancel_for_endpoint", params)
            if lapsed:
                await tx.execute("counter_bump", {"name": "endpoints"})
            return len(lapsed)

        return await self._db.transact(work)

    async def reseal(self) -> int:
        """Seal every secret still in plain text or under an older key with the first key of
        BILLHOOK_SECRET_KEY; how many endpoints changed. Idempotent: every process runs it at
        start, so a rotated key takes over without a separate step."""
        sealer = self.secrets._required()
        kept = ("secret", "previous_secret", "credentials")
        stale = [
            row
            for row in await self._db.fetch("endpoint_secrets")
            if any(row[k] is not None and sealer.stale(row[k]) for k in kept)
        ]

        async def work(tx: Tx) -> None:
            for row in stale:
                resealed = {k: self.secrets.seal(self.secrets.open(row[k])) for k in kept}
                await tx.execute("endpoint_secrets_set", {"id": row["id"], **resealed})

        if stale:
            await self._db.transact(work)
        return len(stale)
