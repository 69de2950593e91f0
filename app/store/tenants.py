"""Tenants and their API keys (stored only as SHA-256 hashes)."""

from __future__ import annotations

from typing import Any

import orjson

from app.ids import new_id
from app.records import ApiKey, Settings, Tenant
from app.store.connector import Connector, IntegrityError, Row, Tx
from app.store.rows import from_row


def _tenant(row: Row) -> Tenant:
    return Tenant(id=row["id"], name=row["name"], created_at=row["created_at"])


class Tenants:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def ensure(
        self, tenant_id: str, name: str, env_key_hash: str | None, now: int
    ) -> ApiKey | None:
        """The `default` tenant, and a process's BILLHOOK_API_KEY as one of its keys: added
        when new, never revoking another (several processes, several keys). The key's record,
        revoked or not: a revoked key stays revoked, and the caller says so."""

        async def work(tx: Tx) -> ApiKey | None:
            await tx.execute("tenant_upsert", {"id": tenant_id, "name": name, "created_at": now})
            if env_key_hash is None:
                return None
            known = await tx.fetchrow("key_by_hash", {"key_hash": env_key_hash})
            if known is not None:
                return from_row(ApiKey, known)
            row = _key_row(tenant_id, env_key_hash, "env", now, "BILLHOOK_API_KEY")
            await tx.execute("key_insert", row)
            return _key(row)

        return await self._db.transact(work)

    async def create(self, name: str, key_hash: str, now: int) -> tuple[Tenant, ApiKey] | None:
        """None when the name is taken."""
        tenant = Tenant(id=new_id("tn"), name=name, created_at=now)
        key = _key_row(tenant.id, key_hash, "api", now, "first key")

        async def work(tx: Tx) -> None:
            await tx.execute("tenant_insert", {"id": tenant.id, "name": name, "created_at": now})
            await tx.execute("key_insert", key)

        try:
            await self._db.transact(work)
        except IntegrityError:
            return None
        return tenant, _key(key)

    async def get(self, tenant_id: str) -> Tenant | None:
        row = await self._db.fetchrow("tenant_get", {"id": tenant_id})
        return _tenant(row) if row else None

    async def by_name(self, name: str) -> Tenant | None:
        row = await self._db.fetchrow("tenant_by_name", {"name": name})
        return _tenant(row) if row else None

    async def page(self, cursor: str | None, limit: int) -> list[Tenant]:
        rows = await self._db.fetch("tenant_list", {"cursor": cursor, "limit": limit})
        return [_tenant(r) for r in rows]

    async def add_key(
        self,
        tenant_id: str,
        key_hash: str,
        now: int,
        name: str,
        source: str = "api",
        replaces: tuple[str, int] | None = None,
    ) -> ApiKey | None:
        """A new key; `replaces` = (key id, when it stops working): a rotation, in one
        transaction. None when the key to replace is not an active key of the tenant."""
        row = _key_row(tenant_id, key_hash, source, now, name)

        async def work(tx: Tx) -> bool:
            if replaces is not None and not await _revoke(tx, tenant_id, *replaces):
                return False
            await tx.execute("key_insert", row)
            return True

        return _key(row) if await self._db.transact(work) else None

    async def revoke_key(self, tenant_id: str, key_id: str, at: int) -> bool:
        async def work(tx: Tx) -> bool:
            return await _revoke(tx, tenant_id, key_id, at)

        return await self._db.transact(work)

    async def key_used(self, key_id: str, now: int) -> None:
        async def work(tx: Tx) -> None:
            await tx.execute("key_used", {"id": key_id, "now": now})

        await self._db.transact(work, durable=False)

    async def seller(self, tenant_id: str) -> dict[str, Any] | None:
        """The tenant's legal details as an invoice's issuer, if set."""
        row = await self._db.fetchrow("tenant_seller_get", {"tenant_id": tenant_id})
        if row is None or row["seller"] is None:
            return None
        seller: dict[str, Any] = orjson.loads(row["seller"])
        return seller

    async def set_seller(self, tenant_id: str, seller: dict[str, Any]) -> None:
        async def work(tx: Tx) -> None:
            params = {"tenant_id": tenant_id, "seller": orjson.dumps(seller).decode()}
            await tx.execute("tenant_seller_set", params)

        await self._db.transact(work)

    async def settings(self, tenant_id: str) -> Settings:
        row = await self._db.fetchrow("tenant_settings", {"id": tenant_id})
        if row is None:
            return Settings()
        return Settings(
            bool(row["auto_finalize"]),
            bool(row["auto_finalize_drafts"]),
            bool(row["free_form_types"]),
        )

    async def set_settings(self, tenant_id: str, settings: Settings) -> None:
        """Bumps `event_types`: the catalog caches whether a tenant takes free-form types."""

        async def work(tx: Tx) -> None:
            params = {"id": tenant_id, "auto_finalize": int(settings.auto_finalize),
                      "auto_finalize_drafts": int(settings.auto_finalize_drafts),
                      "free_form_types": int(settings.free_form_types)}  # fmt: skip
            await tx.execute("tenant_set_settings", params)
            await tx.execute("counter_bump", {"name": "event_types"})

        await self._db.transact(work)

    async def keys(self, tenant_id: str) -> list[ApiKey]:
        rows = await self._db.fetch("keys_of_tenant", {"tenant_id": tenant_id})
        return [from_row(ApiKey, r) for r in rows]

    async def of_key(self, key_hash: str, now: int) -> tuple[str, str, int | None] | None:
        """(tenant, key id, last used) of a key that works at `now`."""
        row = await self._db.fetchrow("tenant_of_key", {"key_hash": key_hash, "now": now})
        return (row["tenant_id"], row["id"], row["last_used_at"]) if row else None

    async def any_key(self, now: int) -> bool:
        return await self._db.fetchrow("api_keys_any", {"now": now}) is not None


async def _revoke(tx: Tx, tenant_id: str, key_id: str, at: int) -> bool:
    return bool(await tx.fetch("key_revoke", {"id": key_id, "tenant_id": tenant_id, "at": at}))


def _key_row(tenant_id: str, key_hash: str, source: str, now: int, name: str) -> dict[str, Any]:
    return {
        "id": new_id("key"),
        "tenant_id": tenant_id,
        "key_hash": key_hash,
        "source": source,
        "name": name,
        "created_at": now,
    }


def _key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(row["id"], row["tenant_id"], row["source"], row["created_at"], name=row["name"])
