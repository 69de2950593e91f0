"""Billing use cases: usage completions, one-off charges and bills, all through one pipeline.

validate → price → apply defaults → totals (the rounding contract) → store the billing
information, its `subscriptions/billingInformationAvailable` event and the event's deliveries in
one transaction. The transactionId is the tenant-wide idempotency key of billing information.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from app import jsoncodec
from app.billing import information
from app.billing.information import Draft, vat_of
from app.billing.models import BillingFields, Charge, Item, UsageCompletion
from app.billing.price_models import PriceModelService
from app.billing.pricing import Line, UsageError, rate
from app.clock import Clock
from app.errors import ApiError, Conflict, ValidationFailed
from app.events import EventService, Publication, Published, Turn, parameters_of
from app.fields import PricedItem
from app.ids import new_id
from app.money import (
    Totals,
    UnknownCurrency,
    amount_limit,
    minor_units,
    plain,
    round_half_up,
    totals,
)
from app.records import BillingRecord, Event, NewEvent
from app.store import Store

DEFAULT_PAYMENT_DAYS = 30
Used = list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class Built:
    """Billing information ready to be written: its row, its payload, the digest of the
    request that made it (for idempotency) and that request."""

    record: BillingRecord
    parameters: dict[str, Any]
    digest: str
    request: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Recorded:
    event: Event
    parameters: dict[str, Any]
    created: bool


class References:
    """Preliminary references `PRE-<year>-<n>`: unique per tenant and year, never an invoice
    number. Numbers come in blocks of 1,000 from a store counter (one write per block), so they
    are unique across processes but may skip (a restart abandons the rest of a block)."""

    BLOCK = 1000

    def __init__(self, store: Store) -> None:
        self._store = store
        self._blocks: dict[str, Iterator[int]] = {}
        self._lock = asyncio.Lock()

    async def next(self, tenant_id: str, year: int) -> str:
        name = f"pre:{tenant_id}:{year}"
        async with self._lock:
            number = next(self._blocks.get(name, iter(())), None)
            if number is None:
                block = iter(await self._store.counters.reserve(name, self.BLOCK))
                self._blocks[name] = block
                number = next(block)
        return f"PRE-{year}-{number:06d}"


class BillingService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventService,
        price_models: PriceModelService,
        timezone: str,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self.price_models = price_models
        self._zone = ZoneInfo(timezone)
        self._references = References(store)

    def today(self) -> date:
        return datetime.fromtimestamp(self._clock.now_ms() / 1000, self._zone).date()

    def midnight_ms(self, day: date) -> int:
        """00:00 of `day` in the business time zone, as unix milliseconds."""
        return int(datetime(day.year, day.month, day.day, tzinfo=self._zone).timestamp() * 1000)

    async def complete_usage(
        self, tenant_id: str, request: UsageCompletion, raw: dict[str, Any]
    ) -> Recorded:
        return await self.record(await self._usage(tenant_id, request, raw))

    async def complete_usage_many(
        self,
        tenant_id: str,
        requests: Sequence[tuple[UsageCompletion, dict[str, Any]]],
        turn: Turn | None = None,
    ) -> list[Recorded | ApiError]:
        """Bulk ingest: each completion priced on its own (its error is its answer), then all
        of them committed in one transaction (`turn`: as EventService.publish_many)."""
        return await self._record_many(
            tenant_id, [partial(self._usage, tenant_id, r, raw) for r, raw in requests], turn
        )

    async def charge(
        self, tenant_id: str, request: Charge, raw: dict[str, Any], idempotency_key: str | None
    ) -> Recorded:
        return await self.record(await self._charge(tenant_id, request, raw, idempotency_key))

    async def charge_many(
        self,
        tenant_id: str,
        requests: Sequence[tuple[Charge, dict[str, Any], str | None]],
        turn: Turn | None = None,
    ) -> list[Recorded | ApiError]:
        """Charges in bulk (queue ingest), as complete_usage_many."""
        return await self._record_many(
            tenant_id,
            [partial(self._charge, tenant_id, r, raw, k) for r, raw, k in requests],
            turn,
        )

    async def _usage(self, tenant_id: str, request: UsageCompletion, raw: dict[str, Any]) -> Built:
        places = places_of(request.currency)
        lines, used = await self.lines(tenant_id, request.items, request.currency, places)
        draft = await self.draft(tenant_id, request, request.transactionId, request.currency, lines)
        return self.build(tenant_id, "usage_completion", draft, raw, used=used)

    async def _charge(
        self, tenant_id: str, request: Charge, raw: dict[str, Any], idempotency_key: str | None
    ) -> Built:
        if idempotency_key and request.transactionId and idempotency_key != request.transactionId:
            raise ValidationFailed.field("transactionId", "differs from the Idempotency-Key header")
        transaction_id = request.transactionId or idempotency_key or new_id("chg")
        places = places_of(request.currency)
        lines, _ = await self.lines(tenant_id, request.items, request.currency, places)
        draft = await self.draft(tenant_id, request, transaction_id, request.currency, lines)
        metadata = {"reason": request.reason} if request.reason else {}
        return self.build(tenant_id, "charge", draft, raw, memo=request.memo, metadata=metadata)

    async def _record_many(
        self,
        tenant_id: str,
        builders: Sequence[Callable[[], Awaitable[Built]]],
        turn: Turn | None = None,
    ) -> list[Recorded | ApiError]:
        """Each item built on its own (its error is its answer), all written in one commit."""
        built: list[Built | ApiError] = []
        for build in builders:
            try:
                built.append(await build())
            except ApiError as exc:
                built.append(exc)
        ready = [b for b in built if isinstance(b, Built)]
        published = iter(
            await self._events.publish_many(tenant_id, [_publication(b) for b in ready], turn)
        )
        return [
            b if isinstance(b, ApiError) else await self._recorded(b, next(published))
            for b in built
        ]

    async def _recorded(self, built: Built, published: Published) -> Recorded | ApiError:
        """The answer to a transactionId: new, the original again, or a 409 (returned, so a
        batch can answer it at its index)."""
        if not published.same_request:
            return await self._conflict(published.event, built.record.transaction_id, built.request)
        if published.created:
            return Recorded(published.event, built.parameters, True)
        return Recorded(published.event, parameters_of(published.event), False)

    async def lines(
        self, tenant_id: str, items: Sequence[Item], currency: str, places: int
    ) -> tuple[list[Line], Used]:
        """Priced items as they are; rated items through their price model's latest version."""
        lines: list[Line] = []
        used: Used = []
        for index, entry in enumerate(items):
            if isinstance(entry, PricedItem):
                lines.append(priced_line(entry))
                continue
            where = f"items.{index}"
            found = await self.price_models.resolve(tenant_id, entry.priceModelId)
            if found is None:
                raise ValidationFailed.field(f"{where}.priceModelId", "unknown price model")
            model, spec = found
            if spec.currency != currency:
                message = f"the price model bills {spec.currency}, this request {currency}"
                raise ValidationFailed.field(f"{where}.priceModelId", message)
            try:
                lines += rate(spec, entry.usage, entry.productID, places)
            except UsageError as exc:
                raise ValidationFailed.field(f"{where}.usage.{exc.variable}", str(exc)) from exc
            used.append((model.id, model.version))
        return lines, used

    async def draft(
        self,
        tenant_id: str,
        fields: BillingFields,
        transaction_id: str,
        currency: str,
        lines: Sequence[Line],
        *,
        billing_start: date | None = None,
        billing_end: date | None = None,
    ) -> Draft:
        """Apply the defaults of docs/billing.md to whatever the request left out."""
        invoice_date = fields.invoiceDate or self.today()
        due_date = fields.dueDate or invoice_date + timedelta(days=DEFAULT_PAYMENT_DAYS)
        if due_date < invoice_date:
            raise ValidationFailed.field(
                "dueDate", f"must not be before invoiceDate {invoice_date}"
            )
        bill_to = await self.bill_to(tenant_id, fields)
        start = billing_start or fields.billingStartDate or invoice_date
        reference = fields.invoiceReference or await self._references.next(
            tenant_id, invoice_date.year
        )
        return Draft(
            transaction_id=transaction_id,
            customer_number=fields.customerNumber,
            external_contract_id=fields.externalContractId,
            order_reference=fields.orderReference or fields.externalContractId,
            order_channel=fields.orderChannel,
            order_date=fields.orderDate or invoice_date,
            invoice_date=invoice_date,
            due_date=due_date,
            invoice_reference=reference,
            currency=currency,
            billing_start=start,
            billing_end=billing_end or fields.billingEndDate or start,
            bill_to=bill_to,
            ship_to=_address(fields.shipToAddress) if fields.shipToAddress else bill_to,
            lines=tuple(lines),
        )

    async def page(
        self, tenant_id: str, filters: dict[str, str | None], cursor: str | None, limit: int
    ) -> list[tuple[BillingRecord, dict[str, Any]]]:
        """Billing information newest first (by customer, contract, open or invoiced), each with
        the parameters it notified."""
        return await self._store.billing.page(tenant_id, filters, cursor, limit)

    async def bill_to(self, tenant_id: str, fields: BillingFields) -> dict[str, Any]:
        """The request's billToAddress, else the customer's last known one."""
        if fields.billToAddress is not None:
            return _address(fields.billToAddress)
        latest = await self._store.billing.latest_payload_of_customer(
            tenant_id, fields.customerNumber
        )
        if latest is None:
            raise ValidationFailed.field(
                "billToAddress", "required: no earlier billing information of this customer has one"
            )
        address: dict[str, Any] = latest["invoice"]["billToAddress"]
        return address

    async def record(self, built: Built) -> Recorded:
        """One commit of what `build` made: billing information + event + deliveries."""
        outcome = await self._recorded(
            built, await self._events.publish_item(built.record.tenant_id, _publication(built))
        )
        if isinstance(outcome, ApiError):
            raise outcome
        return outcome

    def build(
        self,
        tenant_id: str,
        source: str,
        draft: Draft,
        raw: dict[str, Any],
        *,
        used: Used | None = None,
        memo: str | None = None,
        metadata: dict[str, Any] | None = None,
        subscription_id: str | None = None,
        status: str = "open",
    ) -> Built:
        """The billing information row and its payload, checked, not yet written."""
        places = places_of(draft.currency)
        sums = totals(
            ((i.quantity, i.gross_unit_price, i.vat_percent) for i in draft.lines), places
        )
        _check_amounts(draft, sums, places)
        now = self._clock.now_ms()
        request = {"call": source, "request": raw}
        record = BillingRecord(
            id=new_id("bi", now),
            tenant_id=tenant_id,
            event_id=new_id("evt", now),
            source=source,
            transaction_id=draft.transaction_id,
            customer_number=draft.customer_number,
            external_contract_id=draft.external_contract_id,
            currency=draft.currency,
            total_gross=sums.gross,
            total_net=sums.net,
            invoice_date=draft.invoice_date.isoformat(),
            request=jsoncodec.dumps(request),
            created_at=now,
            price_models=tuple(used or ()),
            subscription_id=subscription_id,
            memo=memo,
            metadata=metadata or {},
            status=status,
        )
        digest = hashlib.sha256(jsoncodec.canonical(request)).hexdigest()
        return Built(record, information.parameters(draft, sums, places), digest, request)

    async def prepared(self, built: Built) -> NewEvent:
        """The event of built billing information and its deliveries, carrying the row, for a
        use case that writes them in its own transaction (supersede)."""
        record = built.record
        new = await self._events.prepare(
            record.tenant_id,
            information.EVENT_TYPE,
            built.parameters,
            self._clock.now_ms(),
            event_id=record.event_id,
            idempotency_key=f"billing:{record.transaction_id}",
            ordering_key=record.external_contract_id,
            request_digest=built.digest,
        )
        return dataclasses.replace(new, billing=record)

    async def _conflict(
        self, original: Event, transaction_id: str, request: dict[str, Any]
    ) -> Conflict:
        stored = await self._store.billing.of_event(original.id)
        before = jsoncodec.loads(stored.request) if stored else {}
        return Conflict(
            f"transactionId {transaction_id!r} was used for a different request",
            jsoncodec.differences(before, request),
        )


def _publication(built: Built) -> Publication:
    record = built.record
    return Publication(
        information.EVENT_TYPE,
        built.parameters,
        idempotency_key=f"billing:{record.transaction_id}",
        ordering_key=record.external_contract_id,
        request_digest=built.digest,
        billing=record,
        event_id=record.event_id,
    )


def _check_amounts(draft: Draft, sums: Totals, places: int) -> None:
    """A bill is never negative, and no amount in it grows beyond what a JSON reader that
    parses numbers as doubles keeps exactly (money.amount_limit)."""
    if sums.gross < 0:
        message = (
            f"the total {plain(sums.gross)} is negative; corrections of invoices are credit notes"
        )
        raise ValidationFailed.field("items", message)
    limit = amount_limit(places)
    largest = max([abs(line.gross) for line in draft.lines] + [abs(sums.gross)])
    if largest >= limit:
        message = (
            f"an amount of {plain(round_half_up(largest, places))} {draft.currency}: amounts "
            f"and totals must stay below {plain(limit)} (15 significant digits)"
        )
        raise ValidationFailed.field("items", message)


def places_of(currency: str) -> int:
    try:
        return minor_units(currency)
    except UnknownCurrency as exc:
        raise ValidationFailed.field("currency", str(exc)) from exc


def priced_line(item: PricedItem) -> Line:
    return Line(
        item.productID, item.description, item.quantity, item.grossUnitPrice, item.vatPercent,
        vat_of(item.model_dump()),
    )  # fmt: skip


def _address(address: Any) -> dict[str, Any]:
    data: dict[str, Any] = address.model_dump(exclude_none=True)
    return data
