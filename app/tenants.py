"""Tenants and authentication: which tenant a bearer key belongs to."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import time

from app.clock import Clock
from app.errors import Conflict, Forbidden, NotFound, Unauthorized
from app.records import ApiKey, Tenant
from app.store import Store

DEFAULT_TENANT_ID = "tn_default"
DEFAULT_TENANT_NAME = "default"
_CACHE_SECONDS = 5.0
_CACHE_ENTRIES = 10_000


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

    async def bootstrap(self, env_api_key: str | None) -> None:
        env_hash = hash_key(env_api_key) if env_api_key else None
        now = self._clock.now_ms()
        await self._store.tenants.ensure(DEFAULT_TENANT_ID, DEFAULT_TENANT_NAME, env_hash, now)

    async def tenant_for(self, authorization: str | None) -> str:
        """Keyed by the header as sent, so a cached key costs a dict lookup, not a SHA-256."""
        cached = self._cache.get(authorization or "")
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        tenant_id = await self._store.tenants.of_key(hash_key(_bearer(authorization)))
        if tenant_id is None:
            raise Unauthorized("unknown or revoked API key")
        if len(self._cache) >= _CACHE_ENTRIES:
            self._cache.clear()
        self._cache[authorization or ""] = (tenant_id, time.monotonic() + _CACHE_SECONDS)
        return tenant_id

    async def unreachable(self) -> str | None:
        """Why nobody can call this hub, if nobody can: no tenant has a key, and no admin
        token could create one. Said once at start, with how to fix it."""
        if self._admin_token is not None or await self._store.tenants.any_key():
            return None
        return (
            "no API key can call this hub: set BILLHOOK_API_KEY (e.g. to the output of "
            "`python3 -c 'import secrets; print(\"bh_\" + secrets.token_urlsafe(32))'`) "
            "and restart, or set BILLHOOK_ADMIN_TOKEN and create tenants with POST /v1/tenants"
        )

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
        return await self._store.tenants.keys(tenant_id)

    async def add_key(self, tenant_id: str) -> tuple[ApiKey, str]:
        if await self._store.tenants.get(tenant_id) is None:
            raise NotFound(f"no tenant {tenant_id}")
        key = new_api_key()
        record = await self._store.tenants.add_key(tenant_id, hash_key(key), self._clock.now_ms())
        return record, key

    async def revoke_key(self, tenant_id: str, key_id: str) -> None:
        if not await self._store.tenants.revoke_key(tenant_id, key_id, self._clock.now_ms()):
            raise NotFound(f"no active key {key_id} for tenant {tenant_id}")
        self._cache.clear()


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <key>")
    return token.strip()
