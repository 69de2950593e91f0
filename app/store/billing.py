"""Billing tables: price models (versioned), billing information, subscriptions, counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app import jsoncodec
from app.ids import id_ceiling
from app.records import BillingRecord, NewEvent, PriceModel, Subscription
from app.store.billing_rows import billing_from_row
from app.store.connector import Connector, IntegrityError, Row, Tx
from app.store.events import insert_events
from app.store.rows import from_row, to_row


def _price_model(row: Row) -> PriceModel:
    return from_row(PriceModel, row, spec=jsoncodec.loads(row["spec"]))


def subscription_from_row(row: Row) -> Subscription:
    return from_row(Subscription, row, terms=jsoncodec.loads(row["terms"]))


class Counters:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def value(self, name: str) -> int:
        row = await self._db.fetchrow("counter_get", {"name": name})
        return int(row["value"]) if row else 0

    async def reserve(self, name: str, size: int) -> range:
        """Reserve `size` consecutive numbers of a named counter (unique across processes)."""

        async def work(tx: Tx) -> int:
            row = await tx.fetchrow("counter_reserve", {"name": name, "size": size})
            assert row is not None
            return int(row["value"])

        high = await self._db.transact(work)
        return range(high - size + 1, high + 1)


class PriceModels:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def create(self, model: PriceModel) -> None:
        async def work(tx: Tx) -> None:
            params = {
                "id": model.id,
                "tenant_id": model.tenant_id,
                "spec": jsoncodec.dumps(model.spec).decode(),
                "created_at": model.created_at,
            }
            await tx.execute("price_model_insert", params)
            await tx.execute("counter_bump", {"name": "price_models"})

        await self._db.transact(work)

    async def add_version(
        self, tenant_id: str, model_id: str, spec: dict[str, Any], now: int
    ) -> int | None:
        """The new version's number; None if the model does not exist (or a racing PATCH won)."""

        async def work(tx: Tx) -> int | None:
            params = {
                "id": model_id,
                "tenant_id": tenant_id,
                "spec": jsoncodec.dumps(spec).decode(),
                "created_at": now,
            }
            row = await tx.fetchrow("price_model_new_version", params)
            await tx.execute("counter_bump", {"name": "price_models"})
            return None if row is None else int(row["version"])

        try:
            return await self._db.transact(work)
        except IntegrityError:
            return None

    async def get(
        self, tenant_id: str, model_id: str, version: int | None = None
    ) -> PriceModel | None:
        params: dict[str, Any] = {"id": model_id, "tenant_id": tenant_id}
        if version is None:
            row = await self._db.fetchrow("price_model_latest", params)
        else:
            row = await self._db.fetchrow("price_model_version", params | {"version": version})
        return _price_model(row) if row else None

    async def page(self, tenant_id: str, cursor: str | None, limit: int) -> list[PriceModel]:
        params = {"tenant_id": tenant_id, "cursor": cursor, "limit": limit}
        return [_price_model(r) for r in await self._db.fetch("price_model_list", params)]


class BillingInformation:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def of_event(self, event_id: str) -> BillingRecord | None:
        row = await self._db.fetchrow("billing_by_event", {"event_id": event_id})
        return billing_from_row(row) if row else None

    async def page(
        self, tenant_id: str, filters: dict[str, str | None], cursor: str | None, limit: int
    ) -> list[tuple[BillingRecord, dict[str, Any]]]:
        """Newest first, each with the parameters it notified."""
        params = {"tenant_id": tenant_id, "customer_number": None, "external_contract_id": None,
                  "status": None, "cursor": cursor or id_ceiling("bi"), "limit": limit,
                  **filters}  # fmt: skip
        query = "billing_list_of_customer" if params["customer_number"] else "billing_list"
        rows = await self._db.fetch(query, params)
        return [
            (billing_from_row(r), jsoncodec.loads(bytes(r["body"]))["parameters"]) for r in rows
        ]

    async def by_transaction(
        self, tenant_id: str, transaction_id: str
    ) -> tuple[BillingRecord, dict[str, Any]] | None:
        """Billing information by its transactionId, with the parameters it notified."""
        params = {"tenant_id": tenant_id, "transaction_id": transaction_id}
        row = await self._db.fetchrow("billing_by_transaction", params)
        if row is None:
            return None
        return billing_from_row(row), jsoncodec.loads(bytes(row["body"]))["parameters"]

    async def of_subscription(
        self, tenant_id: str, subscription_id: str
    ) -> list[tuple[BillingRecord, dict[str, Any]]]:
        """Everything a subscription billed, newest first, each with its parameters."""
        params = {"tenant_id": tenant_id, "subscription_id": subscription_id}
        rows = await self._db.fetch("billing_of_subscription", params)
        return [
            (billing_from_row(r), jsoncodec.loads(bytes(r["body"]))["parameters"]) for r in rows
        ]

    async def discard(self, record: BillingRecord, reason: str, event: NewEvent) -> bool:
        """A draft becomes discarded (kept, with its reason) and the event says so, together;
        False when it is no draft any more."""

        async def work(tx: Tx) -> bool:
            if not await tx.fetch("billing_discard", {"id": record.id, "reason": reason}):
                return False
            await insert_events(tx, [event], {})
            return True

        return await self._db.transact(work)

    async def supersede(
        self, record: BillingRecord, reason: str, events: Sequence[NewEvent]
    ) -> bool:
        """Open or draft billing information is replaced by the billing information one of
        `events` carries: the old row marked, the new row and every event written together;
        False when it was invoiced, discarded or replaced meanwhile."""
        replacement = next(e.billing for e in events if e.billing is not None)

        async def work(tx: Tx) -> bool:
            params = {"id": record.id, "reason": reason,
                      "superseded_by": replacement.transaction_id}  # fmt: skip
            if not await tx.fetch("billing_supersede", params):
                return False
            await insert_events(tx, events, {})
            return True

        return await self._db.transact(work)

    async def latest_payload_of_customer(
        self, tenant_id: str, customer_number: str
    ) -> dict[str, Any] | None:
        """The parameters of the customer's most recent billing information (for defaults)."""
        params = {"tenant_id": tenant_id, "customer_number": customer_number}
        row = await self._db.fetchrow("billing_latest_of_customer", params)
        if row is None:
            return None
        parameters: dict[str, Any] = jsoncodec.loads(bytes(row["body"]))["parameters"]
        return parameters


class Subscriptions:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def create(self, sub: Subscription) -> Subscription:
        """Insert it, or return the one an earlier request with its transaction id created."""

        async def work(tx: Tx) -> None:
            await tx.execute("subscription_insert", _subscription_columns(sub))

        try:
            await self._db.transact(work)
        except IntegrityError:
            params = {"tenant_id": sub.tenant_id, "transaction_id": sub.transaction_id}
            row = await self._db.fetchrow("subscription_by_transaction", params)
            if row is None:
                raise
            return subscription_from_row(row)
        return sub

    async def get(self, tenant_id: str, sub_id: str) -> Subscription | None:
        row = await self._db.fetchrow("subscription_get", {"id": sub_id, "tenant_id": tenant_id})
        return subscription_from_row(row) if row else None

    async def page(self, tenant_id: str, cursor: str | None, limit: int) -> list[Subscription]:
        params = {"tenant_id": tenant_id, "cursor": cursor, "limit": limit}
        return [subscription_from_row(r) for r in await self._db.fetch("subscription_list", params)]

    async def claim(self, now: int, lease_until: int, limit: int) -> list[Subscription]:
        async def work(tx: Tx) -> list[Row]:
            params = {"now": now, "lease_until": lease_until, "limit": limit}
            return await tx.fetch("subscriptions_claim", params)

        return [subscription_from_row(r) for r in await self._db.transact(work)]

    async def advance(
        self, sub: Subscription, next_start: str | None, next_bill_at: int | None, now: int
    ) -> bool:
        """Move to the next period if the lease is still ours; `next_start=None` ends it."""

        async def work(tx: Tx) -> bool:
            params = {
                "id": sub.id,
                "status": "active" if next_start else "ended",
                "next_period_start": next_start,
                "next_bill_at": next_bill_at,
                "now": now,
                "lease_until": sub.next_bill_at,
            }
            return bool(await tx.fetch("subscription_advance", params))

        return await self._db.transact(work)


def _subscription_columns(sub: Subscription) -> dict[str, Any]:
    return to_row(sub, terms=jsoncodec.dumps(sub.terms).decode())
