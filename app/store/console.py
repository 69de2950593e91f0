"""What the console keeps: its sessions (by the hash of the cookie's token, so that they can
be ended on the server) and one-time sign-in links (stored as hashes)."""

from __future__ import annotations

from typing import Any

from app.store.connector import Connector, Row, Tx


class Console:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def open_session(self, session: dict[str, Any]) -> None:
        """`session`: the columns of console_sessions (token_hash, grant, csrf, expiry…)."""

        async def work(tx: Tx) -> None:
            await tx.execute("console_session_insert", session)
            await tx.execute("console_sessions_purge", {"before": session["now"]})

        await self._db.transact(work)

    async def session(self, token_hash: str, now: int) -> Row | None:
        """A live session: not ended, not expired, its key not revoked."""
        return await self._db.fetchrow(
            "console_session_get", {"token_hash": token_hash, "now": now}
        )

    async def end_session(self, token_hash: str, now: int) -> None:
        async def work(tx: Tx) -> None:
            await tx.execute("console_session_end", {"token_hash": token_hash, "now": now})

        await self._db.transact(work)

    async def choose_tenant(self, session_id: str, tenant_id: str) -> None:
        async def work(tx: Tx) -> None:
            await tx.execute("console_session_choose", {"id": session_id, "tenant_id": tenant_id})

        await self._db.transact(work)

    async def key_of(self, key_hash: str, now: int) -> tuple[str, str] | None:
        """(key id, tenant) of an active API key."""
        row = await self._db.fetchrow("key_of_hash", {"key_hash": key_hash, "now": now})
        return None if row is None else (str(row["id"]), str(row["tenant_id"]))

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

    async def use_link(self, token_hash: str, now: int) -> tuple[str | None, str, int] | None:
        """(tenant, role, expiry) of an unused, unexpired link, now used; None otherwise."""

        async def work(tx: Tx) -> tuple[str | None, str, int] | None:
            row = await tx.fetchrow("console_link_use", {"token_hash": token_hash, "now": now})
            if row is None:
                return None
            return row["tenant_id"], str(row["role"]), int(row["expires_at"])

        return await self._db.transact(work)
