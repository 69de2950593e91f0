"""Billing tables: price models (versioned), billing information, subscriptions, counters."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app import jsoncodec
from app.records import BillingRecord, PriceModel, Subscription
from app.store.connector import Connector, IntegrityError, Row, Tx


def billing_columns(b: BillingRecord) -> dict[str, Any]:
    return {
        "id": b.id,
        "tenant_id": b.tenant_id,
        "event_id": b.event_id,
        "source": b.source,
        "transaction_id": b.transaction_id,
        "customer_number": b.customer_number,
        "external_contract_id": b.external_contract_id,
        "currency": b.currency,
        "total_gross": str(b.total_gross),
        "total_net": str(b.total_net),
        "invoice_date": b.invoice_date,
        "request": b.request,
        "price_models": jsoncodec.dumps([list(p) for p in b.price_models]).decode(),
        "subscription_id": b.subscription_id,
        "memo": b.memo,
        "metadata": jsoncodec.dumps(b.metadata).decode(),
        "created_at": b.created_at,
    }


def billing_from_row(row: Row) -> BillingRecord:
    return BillingRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        event_id=row["event_id"],
        source=row["source"],
        transaction_id=row["transaction_id"],
        customer_number=row["customer_number"],
        external_contract_id=row["external_contract_id"],
        currency=row["currency"],
        total_gross=Decimal(row["total_gross"]),
        total_net=Decimal(row["total_net"]),
        invoice_date=row["invoice_date"],
        request=bytes(row["request"]),
        created_at=row["created_at"],
        price_models=tuple((p[0], int(p[1])) for p in jsoncodec.loads(row["price_models"])),
        subscription_id=row["subscription_id"],
        memo=row["memo"],
        metadata=jsoncodec.loads(row["metadata"]),
        status=row["status"],
        invoice_number=row["invoice_number"],
    )


def _price_model(row: Row) -> PriceModel:
    return PriceModel(
        id=row["id"],
        version=row["version"],
        tenant_id=row["tenant_id"],
        spec=jsoncodec.loads(row["spec"]),
        created_at=row["created_at"],
    )


def subscription_from_row(row: Row) -> Subscription:
    return Subscription(
        id=row["id"],
        tenant_id=row["tenant_id"],
        transaction_id=row["transaction_id"],
        customer_number=row["customer_number"],
        external_contract_id=row["external_contract_id"],
        product_id=row["product_id"],
        price_model_id=row["price_model_id"],
        price_model_version=row["price_model_version"],
        terms=jsoncodec.loads(row["terms"]),
        status=row["status"],
        next_period_start=row["next_period_start"],
        next_bill_at=row["next_bill_at"],
        cycles_billed=row["cycles_billed"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


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
    return {
        "id": sub.id,
        "tenant_id": sub.tenant_id,
        "transaction_id": sub.transaction_id,
        "customer_number": sub.customer_number,
        "external_contract_id": sub.external_contract_id,
        "product_id": sub.product_id,
        "price_model_id": sub.price_model_id,
        "price_model_version": sub.price_model_version,
        "terms": jsoncodec.dumps(sub.terms).decode(),
        "status": sub.status,
        "next_period_start": sub.next_period_start,
        "next_bill_at": sub.next_bill_at,
        "created_at": sub.created_at,
    }
