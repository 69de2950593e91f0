"""Endpoint use cases: register, change, rotate secrets, and the cache fan-out matches against."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from app import destinations
from app.cache import CounterCache
from app.clock import Clock, to_rfc3339
from app.egress import EgressBlocked, EgressPolicy
from app.errors import NotFound, ValidationFailed, WrongState
from app.ids import new_id
from app.models import EndpointCreate, EndpointPatch, check_url
from app.records import Delivery, Endpoint, Glance
from app.signing import new_secret
from app.store import Store

ROTATION_OVERLAP_MS = 24 * 3600 * 1000
TypeCheck = Callable[[str, Sequence[str] | None], Awaitable[None]]


def endpoint_cache(store: Store) -> CounterCache[str, list[Endpoint]]:
    """Each tenant's endpoints for matching at ingest, without a read per event."""
    return CounterCache(lambda: store.counters.value("endpoints"), store.endpoints.of_tenant)


class EndpointService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        egress: EgressPolicy,
        cache: CounterCache[str, list[Endpoint]],
        known_types: TypeCheck | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._egress = egress
        self.cache = cache
        self._known_types = known_types  # the catalog's check: a typo is refused, not silent

    async def create(self, tenant_id: str, spec: EndpointCreate) -> Endpoint:
        url, credentials, config = _destination(spec.type, spec.url, spec.config)
        await self._check_egress(url)
        await self._check_types(tenant_id, spec.event_types)
        now = self._clock.now_ms()
        endpoint = Endpoint(
            id=new_id("ep"),
            tenant_id=tenant_id,
            url=url,
            type=spec.type,
            config=config,
            credentials=credentials,
            format=spec.format,
            cloudevents_mode=spec.cloudevents_mode,
            secret=new_secret(),
            created_at=now,
            updated_at=now,
            description=spec.description,
            event_types=None if spec.event_types is None else tuple(spec.event_types),
            filter=spec.filter.model_dump(exclude_none=True) if spec.filter else {},
            metadata=spec.metadata,
            rate_limit_per_s=spec.rate_limit_per_s,
            ordered=spec.ordered,
            lease_s=spec.lease_s,
            lease_until=None if spec.lease_s is None else now + spec.lease_s * 1000,
        )
        await self._store.endpoints.create(endpoint)
        self.cache.invalidate()
        return endpoint

    async def get(self, tenant_id: str, endpoint_id: str) -> Endpoint:
        endpoint = await self._store.endpoints.get(tenant_id, endpoint_id)
        if endpoint is None:
            raise NotFound(f"no endpoint {endpoint_id}")
        return endpoint

    async def list(self, tenant_id: str, cursor: str | None, limit: int) -> list[Endpoint]:
        return await self._store.endpoints.page(tenant_id, cursor, limit)

    async def needing_attention(self, tenant_id: str, limit: int) -> builtins.list[Endpoint]:
        """Failing or disabled endpoints (the overview shows them first)."""
        return await self._store.endpoints.needing_attention(tenant_id, limit)

    async def update(self, tenant_id: str, endpoint_id: str, patch: EndpointPatch) -> Endpoint:
        before = await self.get(tenant_id, endpoint_id)
        changes = _changes(patch)
        if "url" in changes or "config" in changes:
            url, credentials, config = _destination(
                before.type,
                changes.get("url", before.url),
                changes.get("config", before.config) if before.type != "webhook" else {},
            )
            # Kept when the URL gives none and names the same broker: never sent elsewhere.
            keep = credentials is None and _same_broker(url, before.url)
            changes |= {"url": url, "config": config,
                        "credentials": before.credentials if keep else credentials}  # fmt: skip
            await self._check_egress(url)
        await self._check_types(tenant_id, changes.get("event_types"))
        if changes.get("status") == "active":
            changes["disabled_reason"] = None
        elif changes.get("status") == "disabled" and before.status != "disabled":
            changes["disabled_reason"] = "manual"
        after = dataclasses.replace(before, updated_at=self._clock.now_ms(), **changes)
        await self._store.endpoints.update(before, after)
        self.cache.invalidate()
        return after

    async def renew_lease(self, tenant_id: str, endpoint_id: str) -> Endpoint:
        """A temporary endpoint's listener is still there: its lease starts again. 409 when
        it has no lease, or when the lease lapsed (the endpoint is disabled for good)."""
        endpoint = await self.get(tenant_id, endpoint_id)
        if endpoint.lease_s is None:
            raise WrongState(f"{endpoint_id} is not a temporary endpoint: it has no lease")
        until = await self._store.endpoints.renew_lease(tenant_id, endpoint_id, self._now())
        if until is None:
            raise WrongState(f"the lease of {endpoint_id} lapsed: register a new endpoint")
        return dataclasses.replace(endpoint, lease_until=until)

    async def lapse_leases(self) -> int:
        """Timed job: temporary endpoints nobody renewed are disabled."""
        lapsed = await self._store.endpoints.lapse_leases(self._now())
        if lapsed:
            self.cache.invalidate()
        return lapsed

    def _now(self) -> int:
        return self._clock.now_ms()

    async def cancel_pending(self, tenant_id: str, endpoint_id: str) -> int:
        """Drop what the endpoint kept (while disabled, say) instead of sending it later."""
        endpoint = await self.get(tenant_id, endpoint_id)
        return await self._store.endpoints.cancel_pending(endpoint.id, self._clock.now_ms())

    async def delete(self, tenant_id: str, endpoint_id: str) -> None:
        if not await self._store.endpoints.delete(tenant_id, endpoint_id, self._clock.now_ms()):
            raise NotFound(f"no endpoint {endpoint_id}")
        self.cache.invalidate()

    async def rotate_secret(self, tenant_id: str, endpoint_id: str) -> Endpoint:
        endpoint = await self.get(tenant_id, endpoint_id)
        now = self._clock.now_ms()
        secret = new_secret()
        await self._store.endpoints.rotate(endpoint, secret, now + ROTATION_OVERLAP_MS, now)
        self.cache.invalidate()
        return await self.get(tenant_id, endpoint_id)

    async def deliveries(
        self,
        tenant_id: str,
        endpoint_id: str,
        status: str | None,
        cursor: str | None,
        limit: int,
    ) -> builtins.list[Delivery]:
        """Its deliveries newest first, of one status or all (keyset pages)."""
        endpoint = await self.get(tenant_id, endpoint_id)
        return await self._store.deliveries.of_endpoint(
            tenant_id, endpoint.id, status, cursor, limit
        )

    async def glance(self, endpoint: Endpoint, cap: int) -> Glance:
        """An endpoint already read for its tenant, as a list row shows it (queue counted up
        to `cap`, next retry or probe, last answer) without reading a long queue whole."""
        return await self._store.endpoints.glance(endpoint.id, cap)

    async def health(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        """What /v1/endpoints/{id}/health answers (app/models.py: EndpointHealthOut)."""
        endpoint = await self.get(tenant_id, endpoint_id)
        now = self._clock.now_ms()
        stats = await self._store.endpoints.attempt_stats(endpoint.id, now - 3_600_000)
        backlog = await self._store.endpoints.backlog(endpoint.id)
        status = "disabled" if endpoint.status == "disabled" else endpoint.health
        return {
            "status": status,
            "disabled_reason": endpoint.disabled_reason,
            "consecutive_failures": endpoint.consecutive_failures,
            "failing_since": to_rfc3339(endpoint.failing_since),
            "last_success_at": to_rfc3339(endpoint.last_success_at),
            "last_hour": {
                "attempts": stats["attempts"],
                "success_rate": stats["ok"] / stats["attempts"] if stats["attempts"] else None,
                "latency_ms": {k: stats[f"{k}_ms"] for k in ("avg", "p50", "p95")},
            },
            "pending": backlog["pending"],
            "held": backlog["held"],
            "oldest_pending_age_s": None
            if backlog["oldest"] is None
            else max(0.0, (now - backlog["oldest"]) / 1000),
            "blocked_ordering_keys": backlog["blocked"],
        }

    async def _check_types(self, tenant_id: str, types: Sequence[str] | None) -> None:
        if self._known_types is not None:
            await self._known_types(tenant_id, types)

    async def _check_egress(self, url: str) -> None:
        try:
            await self._egress.check_url(url)
        except EgressBlocked as exc:
            raise ValidationFailed.field("url", f"not allowed: {exc}", "egress_blocked") from exc


def _destination(
    kind: str, url: str, config: dict[str, Any]
) -> tuple[str, str | None, dict[str, Any]]:
    """A webhook's URL as it is; a broker's checked and split (app/destinations.py)."""
    if kind == "webhook":
        if config:
            raise ValidationFailed.field("config", "a webhook has no configuration")
        try:
            return check_url(url), None, {}
        except ValueError as exc:
            raise ValidationFailed.field("url", str(exc)) from exc
    try:
        return destinations.split(kind, url, config)
    except destinations.DestinationError as exc:
        raise ValidationFailed.field(exc.field, exc.message) from exc


def _same_broker(url: str, before: str) -> bool:
    a, b = urlsplit(url), urlsplit(before)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _changes(patch: EndpointPatch) -> dict[str, Any]:
    """Only the fields the client sent; `event_types: null` means 'all types' again."""
    given = patch.model_dump(exclude_unset=True)
    for required in ("url", "description", "metadata", "ordered", "status", "config", "format",
                     "cloudevents_mode"):  # fmt: skip
        if required in given and given[required] is None:
            raise ValidationFailed.field(required, "must not be null")
    if "event_types" in given and given["event_types"] is not None:
        given["event_types"] = tuple(given["event_types"])
    if "filter" in given:
        given["filter"] = {k: v for k, v in (given["filter"] or {}).items() if v is not None}
    return given
