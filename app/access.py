"""Who may use the console, and as what: a tenant API key or the admin token exchanged for a
session, or a one-time console link minted by API. Roles: `viewer` looks, `operator` also
changes endpoints, replays and finalizes, `admin` (the admin token) is an operator over every
tenant and manages tenants and keys.

Sessions live on the server: the browser holds a random token, the store its hash. A session
ends when its user signs out, when the API key it was opened with is revoked (or, for the
admin, when BILLHOOK_ADMIN_TOKEN changes), when the link it came from expires, and at the
latest SESSION_S after it began. Sign-in is throttled per client and per key prefix.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.clock import Clock
from app.errors import Forbidden, NotFound, RateLimited, Unauthorized, ValidationFailed
from app.ids import new_id
from app.sealing import Sealer
from app.store import Store
from app.tenants import DEFAULT_TENANT_ID, Tenancy, hash_key
from app.throttle import Throttle

ROLES = ("viewer", "operator", "admin")
LINK_TTL_S = (60, 86_400)  # a console link lives between a minute and a day
SESSION_S = 8 * 3600  # a session ends this long after it began, whatever it does meanwhile
PRE_TOKEN_S = 3600  # how long a sign-in form may wait before it is sent
SIGN_IN_FAILURES = 10  # failed sign-ins allowed per client, and per key prefix, per window
SIGN_IN_WINDOW_S = 300


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


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    grant: Grant
    csrf: str
    tenant_id: str | None  # the admin's chosen tenant; a tenant session's own
    expires_at: int  # unix ms

    @property
    def tenant(self) -> str:
        """The tenant the pages show (the admin picks one; see /console/tenant)."""
        return self.tenant_id or self.grant.tenant_id or DEFAULT_TENANT_ID


@dataclass(frozen=True, slots=True)
class Credential:
    """What a session was opened with: revoking it ends the session."""

    grant: Grant
    key_id: str | None = None  # a tenant's API key
    admin_hash: str | None = None  # the admin token's hash
    ends_by: int | None = None  # unix ms: a console link's expiry


class ConsoleAccess:
    def __init__(self, store: Store, clock: Clock, tenancy: Tenancy, sealer: Sealer):
        self._store = store
        self._clock = clock
        self._tenancy = tenancy
        self._forms = URLSafeTimedSerializer(
            sealer.key("billhook/console-forms"), salt="sign-in-form"
        )
        self._by_client = Throttle(SIGN_IN_FAILURES, SIGN_IN_WINDOW_S * 1000)
        self._by_prefix = Throttle(SIGN_IN_FAILURES, SIGN_IN_WINDOW_S * 1000)

    def pre_token(self) -> str:
        """A sign-in form's CSRF token: issued and signed here, so no client can choose it."""
        return self._forms.dumps(secrets.token_urlsafe(16))

    def pre_token_valid(self, token: object) -> bool:
        if not isinstance(token, str):
            return False
        try:
            self._forms.loads(token, max_age=PRE_TOKEN_S)
        except BadSignature:
            return False
        return True

    async def sign_in(self, key: str, client: str) -> Credential:
        """An API key or the admin token, exchanged for a credential (the key is not kept).
        More than SIGN_IN_FAILURES failures per window from one client, or for keys that start
        alike, are answered 429 until the window has passed."""
        key = key.strip()
        now = self._clock.now_ms()
        prefix = key[:8]
        wait = max(self._by_client.wait(client, now), self._by_prefix.wait(prefix, now))
        if wait:
            raise RateLimited(
                f"too many failed sign-ins: try again in {-(-wait // 1000)} s",
                retry_after_s=-(-wait // 1000),
            )
        if self._tenancy.is_admin_token(key):
            return Credential(Grant(None, "admin"), admin_hash=hash_key(key))
        found = await self._store.console.key_of(hash_key(key), now) if key else None
        if found is None:
            self._by_client.fail(client, now)
            self._by_prefix.fail(prefix, now)
            raise Unauthorized("unknown or revoked API key")
        return Credential(Grant(found[1], "operator"), key_id=found[0])

    async def open_session(self, credential: Credential) -> tuple[str, Session]:
        """A new session and the token its cookie carries."""
        now = self._clock.now_ms()
        token = secrets.token_urlsafe(32)
        ends = now + SESSION_S * 1000
        if credential.ends_by is not None:
            ends = min(ends, credential.ends_by)
        grant = credential.grant
        session = Session(new_id("cs", now), grant, secrets.token_urlsafe(24), grant.tenant_id,
                          ends)  # fmt: skip
        await self._store.console.open_session({
            "id": session.id, "token_hash": _hash(token), "tenant_id": grant.tenant_id,
            "role": grant.role, "key_id": credential.key_id,
            "credential_hash": credential.admin_hash, "chosen_tenant": grant.tenant_id,
            "csrf": session.csrf, "now": now, "expires_at": ends,
        })  # fmt: skip
        return token, session

    async def session(self, token: str | None) -> Session | None:
        """The live session of a cookie's token, else None."""
        if not token:
            return None
        row = await self._store.console.session(_hash(token), self._clock.now_ms())
        if row is None:
            return None
        grant = Grant(row["tenant_id"], str(row["role"]))
        if grant.is_admin and not self._tenancy.is_admin_hash(row["credential_hash"]):
            return None  # the admin token changed since: its sessions are over
        return Session(str(row["id"]), grant, str(row["csrf"]), row["chosen_tenant"],
                       int(row["expires_at"]))  # fmt: skip

    async def sign_out(self, token: str) -> None:
        await self._store.console.end_session(_hash(token), self._clock.now_ms())

    async def choose_tenant(self, session: Session, tenant_id: str) -> Session:
        """The admin looks at one tenant at a time."""
        if await self._tenancy.get(tenant_id) is None:
            raise NotFound(f"no tenant {tenant_id}")
        await self._store.console.choose_tenant(session.id, tenant_id)
        return replace(session, tenant_id=tenant_id)

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

    async def use_link(self, token: str) -> Credential:
        """A link's grant; its session ends when the link would have expired."""
        found = await self._store.console.use_link(_hash(token), self._clock.now_ms())
        if found is None:
            raise Unauthorized("this console link is unknown, used or expired")
        return Credential(Grant(found[0], found[1]), ends_by=found[2])

    async def grantor(self, authorization: str | None) -> Grant:
        """Who calls the API: the admin token, or a tenant key (an operator of its tenant)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and self._tenancy.is_admin_token(token):
            return Grant(None, "admin")
        return Grant(await self._tenancy.tenant_for(authorization), "operator")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
