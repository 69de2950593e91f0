"""Who may use the console, and as what: a tenant API key or the admin token exchanged for a
session, or a one-time console link minted by API. Roles: `viewer` looks, `operator` also
changes endpoints, replays and finalizes, `admin` (the admin token) is an operator over every
tenant and manages tenants and keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from app.clock import Clock
from app.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from app.ids import new_id
from app.store import Store
from app.tenants import Tenancy

ROLES = ("viewer", "operator", "admin")
LINK_TTL_S = (60, 86_400)  # a console link lives between a minute and a day


@dataclass(frozen=True, slots=True)
class Grant:
    """What a session may do: one tenant (or, for the admin, any) in one role."""

    tenant_id: str | None  # None: the admin, over all tenants
    role: str

    @property
    def can_change(self) -> bool:
        return self.role in ("operator", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class ConsoleAccess:
    def __init__(self, store: Store, clock: Clock, tenancy: Tenancy):
        self._store = store
        self._clock = clock
        self._tenancy = tenancy
        self._secret: str | None = None

    async def secret(self) -> str:
        """What session cookies are signed with: one secret shared by every process."""
        if self._secret is None:
            self._secret = await self._store.console.secret("console", self._clock.now_ms())
        return self._secret

    async def sign_in(self, key: str) -> Grant:
        """An API key or the admin token, exchanged for a grant (the key is not kept)."""
        key = key.strip()
        if self._tenancy.is_admin_token(key):
            return Grant(None, "admin")
        return Grant(await self._tenancy.tenant_for(f"Bearer {key}"), "operator")

    async def create_link(
        self, grantor: Grant, tenant_id: str | None, role: str, ttl_s: int
    ) -> tuple[str, int, str | None]:
        """A one-time link's token, when it expires and the tenant it opens. A tenant grants
        only itself, and no more than an operator; the admin grants anything."""
        if role not in ROLES or (role == "admin" and not grantor.is_admin):
            raise ValidationFailed.field("role", "viewer or operator (admin: only the admin)")
        if not LINK_TTL_S[0] <= ttl_s <= LINK_TTL_S[1]:
            raise ValidationFailed.field("expires_in_s", "between 60 and 86400 seconds")
        if not grantor.is_admin:
            if tenant_id not in (None, grantor.tenant_id):
                raise Forbidden("a tenant key mints links for its own tenant only")
            tenant_id = grantor.tenant_id
        elif role != "admin" and tenant_id is None:
            raise ValidationFailed.field("tenant_id", "which tenant the link opens")
        if tenant_id is not None and await self._store.tenants.get(tenant_id) is None:
            raise NotFound(f"no tenant {tenant_id}")
        token, now = secrets.token_urlsafe(32), self._clock.now_ms()
        expires = now + ttl_s * 1000
        await self._store.console.add_link(
            new_id("cl", now), _hash(token), tenant_id, role, expires, now
        )
        return token, expires, tenant_id

    async def use_link(self, token: str) -> Grant:
        found = await self._store.console.use_link(_hash(token), self._clock.now_ms())
        if found is None:
            raise Unauthorized("this console link is unknown, used or expired")
        return Grant(found[0], found[1])

    async def grantor(self, authorization: str | None) -> Grant:
        """Who calls the API: the admin token, or a tenant key (an operator of its tenant)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and self._tenancy.is_admin_token(token):
            return Grant(None, "admin")
        return Grant(await self._tenancy.tenant_for(authorization), "operator")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
