"""Subscription changes: queued until their date, applied exactly once.

Applying one is a single transaction: the change moves from queued to applied (only one
process can do that), the subscription moves from the state the change was computed against
(else Stale: a cycle was billed meanwhile, compute again), and whatever it bills or credits is
written with its events: superseded billing information, new billing information, a credit
note of an invoiced period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app import jsoncodec
from app.ids import id_ceiling
from app.records import BillingRecord, NewEvent, Subscription, SubscriptionChangeRecord
from app.store.connector import Connector, IntegrityError, Row, Tx
from app.store.events import insert_events
from app.store.invoices import CreditBuilder, Stale, Written, credit_in
from app.store.rows import from_row, to_row


@dataclass(frozen=True, slots=True)
class PeriodCredit:
    """A credit note of the invoice that billed a period, built under its lock."""

    invoice_number: str
    year: int
    build: CreditBuilder


@dataclass(frozen=True, slots=True)
class Application:
    """Everything applying a change writes, computed against `before`."""

    change: SubscriptionChangeRecord  # as applied (executed now: dated today)
    result: dict[str, Any]
    before: Subscription
    after: Subscription
    events: Sequence[NewEvent]  # billing information (with rows), notices
    # (replaced, reason, the transactionId replacing it: among `events`)
    superseded: Sequence[tuple[BillingRecord, str, str]] = ()
    credits: Sequence[PeriodCredit] = ()  # one credit note per invoice the credit is taken from
    new: bool = False  # applied in its own request: inserted in the same transaction


def change_from_row(row: Row) -> SubscriptionChangeRecord:
    result = row["result"]
    return from_row(
        SubscriptionChangeRecord,
        row,
        spec=jsoncodec.loads(row["spec"]),
        result=None if result is None else jsoncodec.loads(result),
    )


def _columns(change: SubscriptionChangeRecord) -> dict[str, Any]:
    result = None if change.result is None else jsoncodec.dumps(change.result).decode()
    return to_row(change, spec=jsoncodec.dumps(change.spec).decode(), result=result)


class SubscriptionChanges:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def insert(
        self, change: SubscriptionChangeRecord, events: Sequence[NewEvent] = ()
    ) -> SubscriptionChangeRecord:
        """Insert it (with the events that say it is queued), or return the change an earlier
        request with its Idempotency-Key made."""

        async def work(tx: Tx) -> None:
            await tx.execute("change_insert", _columns(change))
            await insert_events(tx, events, {})

        try:
            await self._db.transact(work)
        except IntegrityError:
            earlier = await self.by_key(change.subscription_id, change.idempotency_key)
            if earlier is None:
                raise
            return earlier
        return change

    async def by_key(
        self, subscription_id: str, key: str | None
    ) -> SubscriptionChangeRecord | None:
        if key is None:
            return None
        params = {"subscription_id": subscription_id, "idempotency_key": key}
        row = await self._db.fetchrow("change_by_key", params)
        return change_from_row(row) if row else None

    async def get(self, tenant_id: str, change_id: str) -> SubscriptionChangeRecord | None:
        row = await self._db.fetchrow("change_get", {"id": change_id, "tenant_id": tenant_id})
        return change_from_row(row) if row else None

    async def of_subscription(
        self, subscription_id: str, cursor: str | None, limit: int
    ) -> list[SubscriptionChangeRecord]:
        params = {
            "subscription_id": subscription_id,
            "cursor": cursor or id_ceiling("sc"),
            "limit": limit,
        }
        return [change_from_row(r) for r in await self._db.fetch("changes_of", params)]

    async def due(self, now: int, limit: int) -> list[SubscriptionChangeRecord]:
        rows = await self._db.fetch("changes_due", {"now": now, "limit": limit})
        return [change_from_row(r) for r in rows]

    async def rewrite(
        self, change: SubscriptionChangeRecord, events: Sequence[NewEvent] = ()
    ) -> bool:
        """A queued change edited or cancelled (with the events that say so); False when it
        was applied meanwhile."""

        async def work(tx: Tx) -> bool:
            if not await tx.fetch("change_rewrite", _columns(change)):
                return False
            await insert_events(tx, events, {})
            return True

        return await self._db.transact(work)

    async def fail(self, change: SubscriptionChangeRecord, reason: str, notice: NewEvent) -> bool:
        """A queued change that cannot be applied ends `failed` with its reason, and the
        operational event says so, together; False when it was not queued any more."""

        async def work(tx: Tx) -> bool:
            params = {"id": change.id, "now": change.updated_at,
                      "result": jsoncodec.dumps({"error": reason}).decode()}  # fmt: skip
            if not await tx.fetch("change_failed", params):
                return False
            await insert_events(tx, [notice], {})
            return True

        return await self._db.transact(work)

    async def failed_of_tenant(self, tenant_id: str, limit: int) -> list[SubscriptionChangeRecord]:
        rows = await self._db.fetch(
            "changes_failed_of_tenant", {"tenant_id": tenant_id, "limit": limit}
        )
        return [change_from_row(r) for r in rows]

    async def set_result(self, change_id: str, result: dict[str, Any]) -> None:
        """What applying it led to after the commit (a credit note's number, invoices)."""

        async def work(tx: Tx) -> None:
            params = {"id": change_id, "result": jsoncodec.dumps(result).decode()}
            await tx.execute("change_result", params)

        await self._db.transact(work)

    async def apply(self, application: Application) -> list[Written]:
        """Write it all or nothing; the credit notes it issued are returned. Stale when the
        change was applied or cancelled meanwhile or the subscription moved on."""

        async def work(tx: Tx) -> list[Written]:
            change = application.change
            if application.new:
                await tx.execute("change_insert", _columns(change))
            marked = {
                "id": change.id,
                "now": application.after.updated_at,
                "result": jsoncodec.dumps(application.result).decode(),
                "effective_date": change.effective_date,
                "due_at": change.due_at,
            }
            if not await tx.fetch("change_applied", marked):
                raise Stale(change.id)
            if not await tx.fetch("subscription_changed", _moved(application)):
                raise Stale(application.before.id)
            for old, reason, replacement in application.superseded:
                params = {"id": old.id, "reason": reason, "superseded_by": replacement}
                if not await tx.fetch("billing_supersede", params):
                    raise Stale(old.id)
            await insert_events(tx, application.events, {})
            written = []
            for credit in application.credits:
                note = await credit_in(
                    tx, application.before.tenant_id, credit.invoice_number, credit.year,
                    credit.build,
                )  # fmt: skip
                if note is None:
                    raise Stale(credit.invoice_number)
                written.append(note)
            return written

        return await self._db.transact(work)


def _moved(application: Application) -> dict[str, Any]:
    before, after = application.before, application.after
    return {
        "id": after.id,
        "price_model_id": after.price_model_id,
        "price_model_version": after.price_model_version,
        "terms": jsoncodec.dumps(after.terms).decode(),
        "status": after.status,
        "next_period_start": after.next_period_start,
        "next_bill_at": after.next_bill_at,
        "cycles_billed": after.cycles_billed,
        "now": after.updated_at,
        "seen_next_period_start": before.next_period_start,
        "seen_next_bill_at": before.next_bill_at,
    }
