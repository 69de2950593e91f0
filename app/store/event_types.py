"""Event types tenants declare (the catalog's own part; built-in types are code)."""

from __future__ import annotations

from typing import Any

from app import jsoncodec
from app.records import DeclaredType
from app.store.connector import Connector, IntegrityError, Row, Tx


def _declared(row: Row) -> DeclaredType:
    schema = row["schema"]
    return DeclaredType(
        row["tenant_id"],
        row["name"],
        row["description"],
        None if schema is None else jsoncodec.loads(schema),
        int(row["created_at"]),
    )


class EventTypes:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def insert(self, declared: DeclaredType) -> bool:
        """False when the tenant declared that name already."""

        async def work(tx: Tx) -> None:
            schema = None if declared.schema is None else jsoncodec.dumps(declared.schema).decode()
            params: dict[str, Any] = {
                "tenant_id": declared.tenant_id,
                "name": declared.name,
                "description": declared.description,
                "schema": schema,
                "created_at": declared.created_at,
            }
            await tx.execute("event_type_insert", params)
            await tx.execute("counter_bump", {"name": "event_types"})

        try:
            await self._db.transact(work)
        except IntegrityError:
            return False
        return True

    async def of_tenant(self, tenant_id: str) -> list[DeclaredType]:
        rows = await self._db.fetch("event_types_of_tenant", {"tenant_id": tenant_id})
        return [_declared(r) for r in rows]

    async def delete(self, tenant_id: str, name: str) -> bool:
        """False when the tenant has no such declared type."""

        async def work(tx: Tx) -> bool:
            params = {"tenant_id": tenant_id, "name": name}
            if await tx.fetchrow("event_type_delete", params) is None:
                return False
            await tx.execute("counter_bump", {"name": "event_types"})
            return True

        return await self._db.transact(work)
