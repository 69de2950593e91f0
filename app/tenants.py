"""Tenants and authentication: which tenant a bearer key belongs to."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import time

from app.clock import Clock, to_rfc3339
from app.errors import Conflict, Forbidden, NotFound, Unauthorized
from app.records import ApiKey, Tenant
from app.store import Store

DEFAULT_TENANT_ID = "tn_default"
DEFAULT_TENANT_NAME = "default"
_CACHE_SECONDS = 5.0
_CACHE_ENTRIES = 10_000
_USED_EVERY_MS = 60_000  # a key's last use is written at most this often per process


def new_api_key() -> str:
    return "bh_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """Keys are 256-bit random tokens, so a plain SHA-256 is enough (no password stretching)."""
    return hashlib.sha256(key.encode()).hexdigest()


class Tenancy:
    """Resolves keys to tenants with a short cache: the accept path must not read per request.

    A revoked key stops working at once in this process and within five seconds elsewhere.
    """

    def __init__(self, store: Store, clock: Clock, admin_token: str | None) -> None:
        self._store = store
        self._clock = clock
        self._admin_token = admin_token
        self._cache: dict[str, tuple[str, float]] = {}
        self._env_key: ApiKey | None = None

    async def bootstrap(self, env_api_key: str | None) -> None:
        """The default tenant, and this process's BILLHOOK_API_KEY added to it when new. It
        never revokes another key: several processes may run with different keys."""
        env_hash = hash_key(env_api_key) if env_api_key else None
        now = self._clock.now_ms()
        self._env_key = await self._store.tenants.ensure(
            DEFAULT_TENANT_ID, DEFAULT_TENANT_NAME, env_hash, now
        )

    async def tenant_for(self, authorization: str | None) -> str:
        """Keyed by the header as sent, so a cached key costs a dict lookup, not a SHA-256."""
        cached = self._cache.get(authorization or "")
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        now = self._clock.now_ms()
        found = await self._store.tenants.of_key(hash_key(_bearer(authorization)), now)
        if found is None:
            raise Unauthorized("unknown or revoked API key")
        tenant_id, key_id, last_used = found
        if last_used is None or now - last_used >= _USED_EVERY_MS:
            await self._store.tenants.key_used(key_id, now)
        if len(self._cache) >= _CACHE_ENTRIES:
            self._cache.clear()
        self._cache[authorization or ""] = (tenant_id, time.monotonic() + _CACHE_SECONDS)
        return tenant_id

    async def problems(self) -> builtins.list[str]:
        """What an operator must hear at start, each in one line with the fix: this process's
        BILLHOOK_API_KEY was revoked, or no key at all can call the hub."""
        said = []
        key, now = self._env_key, self._clock.now_ms()
        if key is not None and key.revoked_at is not None and key.revoked_at <= now:
            said.append(
                f"BILLHOOK_API_KEY is {key.id} ({key.name or 'unnamed'}), revoked at "
                f"{to_rfc3339(key.revoked_at)}: it stays revoked. Set a current key, or add one "
                "with `billhook keys add --name …` (docs/deploy.md, API keys)"
            )
        if self._admin_token is None and not await self._store.tenants.any_key(now):
            said.append(
                "no API key can call this hub: set BILLHOOK_API_KEY (e.g. to the output of "
                "`python3 -c 'import secrets; print(\"bh_\" + secrets.token_urlsafe(32))'`) "
                "and restart, add one with `billhook keys add --name …`, or set "
                "BILLHOOK_ADMIN_TOKEN and create tenants with POST /v1/tenants"
            )
        return said

    def require_admin(self, authorization: str | None) -> None:
        if self._admin_token is None:
            raise Forbidden("tenant administration is off: set BILLHOOK_ADMIN_TOKEN")
        if not self.is_admin_token(_bearer(authorization)):
            raise Unauthorized("wrong admin token")

    def is_admin_token(self, token: str) -> bool:
        """The admin token (in constant time); never, when none is set."""
        admin = self._admin_token
        return admin is not None and hmac.compare_digest(token.strip(), admin)

    def is_admin_hash(self, hashed: str | None) -> bool:
        """The hash of the admin token in force (a console session opened with an earlier
        token is not)."""
        admin = self._admin_token
        return (
            admin is not None
            and hashed is not None
            and hmac.compare_digest(hashed, hash_key(admin.strip()))
        )

    async def create(self, name: str) -> tuple[Tenant, ApiKey, str]:
        key = new_api_key()
        created = await self._store.tenants.create(name, hash_key(key), self._clock.now_ms())
        if created is None:
            raise Conflict(f"a tenant named {name!r} exists")
        return created[0], created[1], key

    async def list(self, cursor: str | None, limit: int) -> list[Tenant]:
        return await self._store.tenants.page(cursor, limit)

    async def get(self, tenant_id: str) -> Tenant | None:
        return await self._store.tenants.get(tenant_id)

    async def keys(self, tenant_id: str) -> builtins.list[ApiKey]:
        """A tenant's keys (their hashes stay in the store), revoked ones included."""
        if await self._store.tenants.get(tenant_id) is None:
            raise NotFound(f"no tenant {tenant_id}")
        return await self._store.tenants.keys(tenant_id)

    async def add_key(
        self,
        tenant_id: str,
        name: str = "",
        replaces: str | None = None,
        overlap_ms: int = 0,
        source: str = "api",
    ) -> tuple[ApiKey, str]:
        """A new key; with `replaces`, a rotation: the old key keeps working for `overlap_ms`
        more, then stops (both in one transaction)."""
        if await self._store.tenants.get(tenant_id) is None:
            raise NotFound(f"no tenant {tenant_id}")
        key, now = new_api_key(), self._clock.now_ms()
        ending = None if replaces is None else (replaces, now + overlap_ms)
        record = await self._store.tenants.add_key(
            tenant_id, hash_key(key), now, name, source, ending
        )
        if record is None:
            raise NotFound(f"no active key {replaces} for tenant {tenant_id}")
        self._cache.clear()
        return record, key

    async def revoke_key(self, tenant_id: str, key_id: str, after_ms: int = 0) -> None:
        """Now, or after `after_ms` (an overlap for whoever still uses it)."""
        at = self._clock.now_ms() + after_ms
        if not await self._store.tenants.revoke_key(tenant_id, key_id, at):
            raise NotFound(f"no active key {key_id} for tenant {tenant_id}")
        self._cache.clear()


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <key>")
    return token.strip()
