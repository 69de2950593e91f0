"""`billhook keys list|add|revoke`: a tenant's API keys from the database itself — the way back
in when no key works (every key revoked, a lost BILLHOOK_API_KEY) and no admin token is set.
Whoever can reach the database runs the hub, so these need BILLHOOK_DATABASE_URL, not a key
(docs/deploy.md, API keys)."""

from __future__ import annotations

from app.clock import SystemClock, to_rfc3339
from app.operator import tenant_id
from app.output import show
from app.store import Store
from app.tenants import Tenancy


def _tenancy(store: Store) -> Tenancy:
    return Tenancy(store, SystemClock(), admin_token=None)


async def list_keys(store: Store, tenant: str, as_json: bool) -> None:
    keys = await _tenancy(store).keys(await tenant_id(store, tenant))
    data = [
        {"id": k.id, "name": k.name, "source": k.source, "created_at": to_rfc3339(k.created_at),
         "last_used_at": to_rfc3339(k.last_used_at), "revoked_at": to_rfc3339(k.revoked_at)}
        for k in keys
    ]  # fmt: skip
    columns = ("id", "name", "source", "created_at", "last_used_at", "revoked_at")
    show(columns, [tuple(d[c] or "" for c in columns) for d in data], data, as_json)


async def add_key(
    store: Store, tenant: str, name: str, replaces: str | None, overlap_s: int
) -> None:
    """Prints the new key once: it is stored only as a hash."""
    found = await tenant_id(store, tenant)
    key, secret = await _tenancy(store).add_key(found, name, replaces, overlap_s * 1000, "cli")
    print(f"{key.id} {secret}")


async def revoke_key(store: Store, tenant: str, key_id: str) -> None:
    await _tenancy(store).revoke_key(await tenant_id(store, tenant), key_id)
    print(f"revoked {key_id}")
