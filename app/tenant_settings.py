"""A tenant's own settings — automatic finalization of its billing information, and whether it
may publish event types that are not in the catalog — read and changed by the API
(`/v1/settings`) and the console alike. A change takes effect in this process at once (the
catalog forgets the rules it cached), in other processes within the catalog's second."""

from __future__ import annotations

import dataclasses

from app.catalog import Catalog
from app.records import Settings
from app.store import Store


class TenantSettingsService:
    def __init__(self, store: Store, catalog: Catalog, finalize_after_ms: int | None) -> None:
        self._store = store
        self._catalog = catalog
        self.finalize_after_ms = finalize_after_ms  # BILLHOOK_FINALIZE_AFTER; None: off

    async def get(self, tenant_id: str) -> Settings:
        return await self._store.tenants.settings(tenant_id)

    async def change(
        self,
        tenant_id: str,
        *,
        auto_finalize: bool | None = None,
        auto_finalize_drafts: bool | None = None,
        free_form_types: bool | None = None,
    ) -> Settings:
        """Only what is given changes; what is left out keeps its value."""
        asked = {"auto_finalize": auto_finalize, "auto_finalize_drafts": auto_finalize_drafts,
                 "free_form_types": free_form_types}  # fmt: skip
        current = await self.get(tenant_id)
        wanted = dataclasses.replace(current, **{k: v for k, v in asked.items() if v is not None})
        await self._store.tenants.set_settings(tenant_id, wanted)
        self._catalog.forget()
        return wanted
