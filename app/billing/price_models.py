"""Price model use cases: create, read, and PATCH (which makes a new version)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.billing.models import PriceModelPatch, PriceModelSpec
from app.cache import CounterCache
from app.clock import Clock
from app.errors import NotFound, ValidationFailed
from app.ids import new_id
from app.money import UnknownCurrency, minor_units
from app.records import PriceModel
from app.store import Store

Key = tuple[str, str, int | None]  # tenant, model id, version (None = latest)


class PriceModelService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._cache: CounterCache[Key, tuple[PriceModel, PriceModelSpec] | None] = CounterCache(
            lambda: store.counters.value("price_models"), self._load
        )

    async def _load(self, key: Key) -> tuple[PriceModel, PriceModelSpec] | None:
        model = await self._store.price_models.get(*key)
        return None if model is None else (model, PriceModelSpec.model_validate(model.spec))

    async def create(self, tenant_id: str, spec: PriceModelSpec) -> PriceModel:
        _check_currency(spec.currency)
        model = PriceModel(
            id=new_id("pm"),
            version=1,
            tenant_id=tenant_id,
            spec=_data(spec),
            created_at=self._clock.now_ms(),
        )
        await self._store.price_models.create(model)
        self._cache.invalidate()
        return model

    async def resolve(
        self, tenant_id: str, model_id: str, version: int | None = None
    ) -> tuple[PriceModel, PriceModelSpec] | None:
        """The model (latest version unless one is named), cached: it is on the rating path."""
        return await self._cache.get((tenant_id, model_id, version))

    async def get(self, tenant_id: str, model_id: str, version: int | None = None) -> PriceModel:
        found = await self.resolve(tenant_id, model_id, version)
        if found is None:
            suffix = "" if version is None else f" version {version}"
            raise NotFound(f"no price model {model_id}{suffix}")
        return found[0]

    async def page(self, tenant_id: str, cursor: str | None, limit: int) -> list[PriceModel]:
        return await self._store.price_models.page(tenant_id, cursor, limit)

    async def patch(self, tenant_id: str, model_id: str, patch: PriceModelPatch) -> PriceModel:
        """A new version: the fields sent replace the latest version's; old versions stay."""
        current = await self.get(tenant_id, model_id)
        merged = {**current.spec, **patch.model_dump(exclude_unset=True)}
        try:
            spec = PriceModelSpec.model_validate(merged)
        except ValidationError as exc:
            raise ValidationFailed.from_pydantic(
                exc, "the changed price model has invalid"
            ) from exc
        _check_currency(spec.currency)
        now = self._clock.now_ms()
        version = await self._store.price_models.add_version(tenant_id, model_id, _data(spec), now)
        if version is None:
            raise NotFound(f"no price model {model_id}")
        self._cache.invalidate()
        return PriceModel(model_id, version, tenant_id, _data(spec), now)


def _data(spec: PriceModelSpec) -> dict[str, Any]:
    """JSON-ready data, Decimals kept exact; unset top-level options left out, `type` first."""
    data = {k: v for k, v in spec.model_dump().items() if v is not None}
    data["components"] = [{"type": c.pop("type"), **c} for c in data["components"]]
    return data


def _check_currency(currency: str) -> None:
    try:
        minor_units(currency)
    except UnknownCurrency as exc:
        raise ValidationFailed.field("currency", str(exc)) from exc
