"""What the console keeps: the secret its session cookies are signed with (one for every
process) and one-time sign-in links (stored as hashes)."""

from __future__ import annotations

import secrets

from app.store.connector import Connector, Tx


class Console:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def secret(self, name: str, now: int) -> str:
        """The named secret, made on first use; every process gets the same one."""

        async def work(tx: Tx) -> str:
            params = {"name": name, "value": secrets.token_urlsafe(48), "now": now}
            await tx.execute("hub_secret_ensure", params)
            row = await tx.fetchrow("hub_secret_get", {"name": name})
            assert row is not None
            return str(row["value"])

        return await self._db.transact(work)

    async def add_link(
        self, link_id: str, token_hash: str, tenant_id: str | None, role: str, expires_at: int,
        now: int,
    ) -> None:  # fmt: skip
        async def work(tx: Tx) -> None:
            await tx.execute("console_link_insert", {
                "id": link_id, "token_hash": token_hash, "tenant_id": tenant_id, "role": role,
                "expires_at": expires_at, "now": now,
            })  # fmt: skip

        await self._db.transact(work)

    async def use_link(self, token_hash: str, now: int) -> tuple[str | None, str] | None:
        """(tenant, role) of an unused, unexpired link, now used; None otherwise."""

        async def work(tx: Tx) -> tuple[str | None, str] | None:
            row = await tx.fetchrow("console_link_use", {"token_hash": token_hash, "now": now})
            return None if row is None else (row["tenant_id"], str(row["role"]))

        return await self._db.transact(work)
