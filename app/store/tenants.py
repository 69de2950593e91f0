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

    async def ensure(self, tenant_id: str, name: str, env_key_hash: str | None, now: int) -> None:
        """The `default` tenant and its BILLHOOK_API_KEY: the env key replaces the previous one."""

        async def work(tx: Tx) -> None:
            await tx.execute("tenant_upsert", {"id": tenant_id, "name": name, "created_at": now})
            if env_key_hash is None:
                return
            await tx.execute(
                "key_revoke_source",
                {"tenant_id": tenant_id, "source": "env", "now": now, "keep": env_key_hash},
            )
            known = await tx.fetchrow("key_by_hash", {"key_hash": env_key_hash})
            if known is None:
                await tx.execute("key_insert", _key_row(tenant_id, env_key_hash, "env", now))

        await self._db.transact(work)

    async def create(self, name: str, key_hash: str, now: int) -> tuple[Tenant, ApiKey] | None:
        """None when the name is taken."""
        tenant = Tenant(id=new_id("tn"), name=name, created_at=now)
        key = _key_row(tenant.id, key_hash, "api", now)

        async def work(tx: Tx) -> None:
            await tx.execute("tenant_insert", {"id": tenant.id, "name": name, "created_at": now})
            await tx.execute("key_insert", key)

        try:
            await self._db.transact(work)
        except IntegrityError:
            return None
        return tenant, ApiKey(id=key["id"], tenant_id=tenant.id, source="api", created_at=now)

    async def get(self, tenant_id: str) -> Tenant | None:
        row = await self._db.fetchrow("tenant_get", {"id": tenant_id})
        return _tenant(row) if row else None

    async def by_name(self, name: str) -> Tenant | None:
        row = await self._db.fetchrow("tenant_by_name", {"name": name})
        return _tenant(row) if row else None

    async def page(self, cursor: str | None, limit: int) -> list[Tenant]:
        rows = await self._db.fetch("tenant_list", {"cursor": cursor, "limit": limit})
        return [_tenant(r) for r in rows]

    async def add_key(self, tenant_id: str, key_hash: str, now: int) -> ApiKey:
        row = _key_row(tenant_id, key_hash, "api", now)

        async def work(tx: Tx) -> None:
            await tx.execute("key_insert", row)

        await self._db.transact(work)
        return ApiKey(id=row["id"], tenant_id=tenant_id, source="api", created_at=now)

    async def revoke_key(self, tenant_id: str, key_id: str, now: int) -> bool:
        async def work(tx: Tx) -> bool:
            params = {"id": key_id, "tenant_id": tenant_id, "now": now}
            return bool(await tx.fetch("key_revoke", params))

        return await self._db.transact(work)

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
        return Settings(bool(row["auto_finalize"]), bool(row["auto_finalize_drafts"]))

    async def set_settings(self, tenant_id: str, settings: Settings) -> None:
        async def work(tx: Tx) -> None:
            params = {"id": tenant_id, "auto_finalize": int(settings.auto_finalize),
                      "auto_finalize_drafts": int(settings.auto_finalize_drafts)}  # fmt: skip
            await tx.execute("tenant_set_settings", params)

        await self._db.transact(work)

    async def keys(self, tenant_id: str) -> list[ApiKey]:
        rows = await self._db.fetch("keys_of_tenant", {"tenant_id": tenant_id})
        return [from_row(ApiKey, r) for r in rows]

    async def of_key(self, key_hash: str) -> str | None:
        row = await self._db.fetchrow("tenant_of_key", {"key_hash": key_hash})
        return row["tenant_id"] if row else None

    async def any_key(self) -> bool:
        return await self._db.fetchrow("api_keys_any") is not None


def _key_row(tenant_id: str, key_hash: str, source: str, now: int) -> dict[str, Any]:
    return {
        "id": new_id("key"),
        "tenant_id": tenant_id,
        "key_hash": key_hash,
        "source": source,
        "created_at": now,
    }
