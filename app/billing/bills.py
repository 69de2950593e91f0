"""POST /v1/bills (seed 001): bill against a price model or one-off items; a recurring model
starts a subscription whose cycles the worker bills on schedule.

A cycle's transactionId is `<subscription id>:<period start>`, so billing a cycle twice (a crash
between billing and advancing, or the request and the worker racing) records it once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from app import jsoncodec
from app.billing.information import vat_of
from app.billing.models import Bill, BillingFields, PriceModelSpec
from app.billing.periods import ONE_DAY, Cycle, cycle, first_anchor
from app.billing.pricing import Line, UsageError, arguments, prorate, rate
from app.billing.service import BillingService, Recorded, places_of
from app.clock import Clock
from app.errors import Conflict, NotFound, SellerMissing, ValidationFailed, WrongState
from app.events import parameters_of
from app.ids import new_id
from app.invoicing.service import InvoiceService
from app.records import BillingRecord, Document, Subscription
from app.store import Store
from app.store.invoices import GroupKey

log = logging.getLogger("billhook.billing")

LEASE_MS = 60_000


@dataclass(frozen=True, slots=True)
class BillOutcome:
    recorded: Recorded | None
    subscription: Subscription | None
    invoice: Document | None = None  # `draft: false`: finalized at once


class BillService:
    def __init__(
        self, store: Store, clock: Clock, billing: BillingService, invoices: InvoiceService
    ) -> None:
        self._store = store
        self._clock = clock
        self._billing = billing
        self._invoices = invoices

    async def bill(self, tenant_id: str, request: Bill, raw: dict[str, Any]) -> BillOutcome:
        spec, version = await self._model(tenant_id, request)
        if not request.draft:
            await self._invoices.seller(tenant_id)  # a final invoice needs its issuer: 409 now
        if spec is not None and spec.interval is not None:
            return await self._subscribe(tenant_id, request, raw, spec, version)
        currency = spec.currency if spec is not None else request.currency
        if currency is None:
            raise ValidationFailed.field("currency", "required when billing oneOffLineItems only")
        places = places_of(currency)
        lines = self._rated(spec, request, places) if spec is not None else []
        lines += [
            _one_off(item.model_dump(), request.productId) for item in request.oneOffLineItems or ()
        ]
        transaction_id = request.transactionId or new_id("bill")
        draft = await self._billing.draft(tenant_id, request, transaction_id, currency, lines)
        used = [(request.priceModelId, version)] if request.priceModelId else []
        built = self._billing.build(
            tenant_id, "bill", draft, raw, used=used, memo=request.memo,
            metadata=request.metadata, status=_status(request.draft),
        )  # fmt: skip
        recorded = await self._billing.record(built)
        invoice = None if request.draft else await self._final(tenant_id, recorded, currency)
        return BillOutcome(recorded, None, invoice)

    async def repriced(self, record: BillingRecord) -> tuple[list[Line], list[tuple[str, int]]]:
        """The lines a bill or a subscription cycle gets from its inputs today, with the latest
        version of the price model that priced it (what regenerating a draft re-prices it
        with); proration lines a subscription change added to a cycle ride along as they are."""
        raw = jsoncodec.loads(record.request)["request"]
        if record.source == "subscription_change":
            raise WrongState("a proration is not re-priced: correct it with a credit note")
        if record.subscription_id is None:
            return await self._repriced_bill(record, Bill.model_validate(raw))
        sub = await self.subscription(record.tenant_id, record.subscription_id)
        model_id = record.price_models[0][0] if record.price_models else sub.price_model_id
        found = await self._billing.price_models.resolve(sub.tenant_id, model_id)
        assert found is not None, "a price model never disappears"
        period = cycle(sub.terms, date.fromisoformat(raw["period"]))
        if "until" in raw:  # the used part of a cycle a change cut short (applying.py)
            until = date.fromisoformat(raw["until"])
            period = Cycle(period.start, until, (until - period.start).days, period.full_days)
        first = raw["period"] == sub.terms["start"]
        lines = self.period_lines(sub, found[1], period, places_of(record.currency), first)
        lines += [_one_off(item, sub.product_id) for item in raw.get("adjustments", ())]
        return lines, [(model_id, found[0].version)]

    async def _repriced_bill(
        self, record: BillingRecord, request: Bill
    ) -> tuple[list[Line], list[tuple[str, int]]]:
        spec, version = await self._model(record.tenant_id, request)
        currency = spec.currency if spec is not None else record.currency
        lines = self._rated(spec, request, places_of(currency)) if spec is not None else []
        lines += [
            _one_off(i.model_dump(), request.productId) for i in request.oneOffLineItems or ()
        ]
        used = [(request.priceModelId, version)] if request.priceModelId else []
        return lines, used

    async def _final(self, tenant_id: str, recorded: Recorded, currency: str) -> Document | None:
        """`draft: false`: this billing information on an invoice of its own, at once (a repeat
        of the request answers the invoice it got the first time)."""
        if not recorded.created:
            return await self._invoices.of_event(tenant_id, recorded.event.id)
        p = recorded.parameters
        key = GroupKey(p["customerNumber"], p["externalContractId"], currency)
        return await self._invoices.finalize_one(tenant_id, key, recorded.event.id)

    async def _model(self, tenant_id: str, request: Bill) -> tuple[PriceModelSpec | None, int]:
        if request.priceModelId is None:
            return None, 0
        found = await self._billing.price_models.resolve(tenant_id, request.priceModelId)
        if found is None:
            raise ValidationFailed.field("priceModelId", "unknown price model")
        if request.currency and request.currency != found[1].currency:
            raise ValidationFailed.field("currency", f"the price model bills {found[1].currency}")
        return found[1], found[0].version

    def _rated(self, spec: PriceModelSpec, request: Bill, places: int) -> list[Line]:
        try:
            return rate(spec, usage_of(spec, request), request.productId, places)
        except UsageError as exc:
            raise ValidationFailed.field(f"variables.{exc.variable}", str(exc)) from exc

    # -- subscriptions ----------------------------------------------------------------------

    async def _subscribe(
        self, tenant_id: str, request: Bill, raw: dict[str, Any], spec: PriceModelSpec, version: int
    ) -> BillOutcome:
        assert spec.interval is not None
        assert request.priceModelId is not None
        self._rated(spec, request, places_of(spec.currency))  # refuse bad variables now
        start = request.contractStart or self._billing.today()
        terms = await self._terms(tenant_id, request, raw, spec.interval, start)
        terms["variables"] = usage_of(spec, request)
        now = self._clock.now_ms()
        sub_id = new_id("sub", now)
        first = cycle(terms, start)
        wanted = Subscription(
            id=sub_id,
            tenant_id=tenant_id,
            transaction_id=request.transactionId or new_id("bill", now),
            customer_number=request.customerNumber,
            external_contract_id=request.externalContractId or sub_id,
            product_id=request.productId,
            price_model_id=request.priceModelId,
            price_model_version=version,
            terms=terms,
            status="active",
            next_period_start=start.isoformat(),
            # In advance, this request bills the first cycle itself: it holds the lease.
            next_bill_at=self._billing.midnight_ms(first.end)
            if request.billInArrears
            else now + LEASE_MS,
            cycles_billed=0,
            created_at=now,
            updated_at=now,
        )
        stored = await self._store.subscriptions.create(wanted)
        if stored.id != wanted.id:
            return await self._repeated(stored, raw)
        if request.billInArrears:
            return BillOutcome(None, stored)
        recorded = await self.bill_cycle(stored)
        await self._advance(stored)
        invoice = None if request.draft else await self._final(tenant_id, recorded, spec.currency)
        sub = await self._store.subscriptions.get(tenant_id, stored.id)
        return BillOutcome(recorded, sub, invoice)

    async def _terms(
        self, tenant_id: str, request: Bill, raw: dict[str, Any], interval: str, start: date
    ) -> dict[str, Any]:
        bill_to = await self._billing.bill_to(tenant_id, request)
        ship_to = (
            request.shipToAddress.model_dump(exclude_none=True)
            if request.shipToAddress
            else bill_to
        )
        first_invoice = request.invoiceDate or self._billing.today()
        return {
            "start": start.isoformat(),
            "anchor": first_anchor(
                request.billingCycleAnchor or start, start, interval
            ).isoformat(),
            "interval": interval,
            "in_arrears": request.billInArrears,
            "contract_end": request.contractEnd.isoformat() if request.contractEnd else None,
            "variables": request.variables,
            "bill_to": bill_to,
            "ship_to": ship_to,
            "one_off_items": [i.model_dump() for i in request.oneOffLineItems or ()],
            "due_days": (request.dueDate - first_invoice).days if request.dueDate else None,
            "order_channel": request.orderChannel,
            "memo": request.memo,
            "metadata": request.metadata,
            "draft": request.draft,
            "request": raw,
        }

    async def _repeated(self, sub: Subscription, raw: dict[str, Any]) -> BillOutcome:
        """The same transactionId again: the same request gets the original answer."""
        differences = jsoncodec.differences(sub.terms["request"], raw)
        if differences:
            raise Conflict(
                f"transactionId {sub.transaction_id!r} was used for a different request",
                differences,
            )
        first = await self._store.events.by_idempotency_key(
            sub.tenant_id, f"billing:{sub.id}:{sub.terms['start']}"
        )
        recorded = None if first is None else Recorded(first, parameters_of(first), False)
        return BillOutcome(recorded, sub)

    async def bill_cycle(self, sub: Subscription) -> Recorded:
        """Bill the period starting at sub.next_period_start (idempotent per period)."""
        assert sub.next_period_start is not None
        found = await self._billing.price_models.resolve(
            sub.tenant_id, sub.price_model_id, sub.price_model_version
        )
        assert found is not None, "a price model version never disappears"
        spec = found[1]
        period = cycle(sub.terms, date.fromisoformat(sub.next_period_start))
        lines = self.period_lines(
            sub, spec, period, places_of(spec.currency), sub.cycles_billed == 0
        )
        draft = await self._billing.draft(
            sub.tenant_id,
            cycle_fields(sub, self._billing.today()),
            f"{sub.id}:{period.start.isoformat()}",
            spec.currency,
            lines,
            billing_start=period.start,
            billing_end=period.end - ONE_DAY,
        )
        built = self._billing.build(
            sub.tenant_id,
            "subscription" if sub.cycles_billed else "bill",
            draft,
            {"subscription": sub.id, "period": period.start.isoformat()},
            used=[(sub.price_model_id, sub.price_model_version)],
            memo=sub.terms.get("memo"),
            metadata=sub.terms.get("metadata") or {},
            subscription_id=sub.id,
            status=_status(sub.terms.get("draft", True)),
        )
        return await self._billing.record(built)

    def period_lines(
        self, sub: Subscription, spec: PriceModelSpec, period: Cycle, places: int, first: bool
    ) -> list[Line]:
        """The fee and the components for the subscription's variables, prorated together for
        a partial period; one-off items ride along with the first cycle."""
        assert spec.fee is not None
        label = f"{spec.name} {period.start.isoformat()} – {(period.end - ONE_DAY).isoformat()}"
        lines = [Line(sub.product_id, label, Decimal(1), spec.fee, spec.vatPercent)]
        lines += rate(spec, _decimals(sub.terms["variables"]), sub.product_id, places)
        if period.partial:
            lines = [_prorated(line, period, places) for line in lines]
        if first:
            lines += [_one_off(item, sub.product_id) for item in sub.terms["one_off_items"]]
        return lines

    async def _advance(self, sub: Subscription) -> bool:
        assert sub.next_period_start is not None
        period = cycle(sub.terms, date.fromisoformat(sub.next_period_start))
        end = sub.terms.get("contract_end")
        if end and period.end > date.fromisoformat(end):
            return await self._store.subscriptions.advance(sub, None, None, self._clock.now_ms())
        following = cycle(sub.terms, period.end)
        when = following.end if sub.terms["in_arrears"] else following.start
        return await self._store.subscriptions.advance(
            sub, period.end.isoformat(), self._billing.midnight_ms(when), self._clock.now_ms()
        )

    async def subscriptions(
        self, tenant_id: str, cursor: str | None, limit: int
    ) -> list[Subscription]:
        return await self._store.subscriptions.page(tenant_id, cursor, limit)

    async def subscription(self, tenant_id: str, subscription_id: str) -> Subscription:
        found = await self._store.subscriptions.get(tenant_id, subscription_id)
        if found is None:
            raise NotFound(f"no subscription {subscription_id}")
        return found

    async def run_due(self, limit: int = 100) -> int:
        """Bill every cycle that is due (the worker calls this periodically)."""
        now = self._clock.now_ms()
        due = await self._store.subscriptions.claim(now, now + LEASE_MS, limit)
        for sub in due:
            try:
                recorded = await self.bill_cycle(sub)
                await self._advance(sub)
                if sub.terms.get("draft") is False:
                    await self._final_cycle(sub, recorded)
            except Exception:
                log.exception(
                    "billing a subscription cycle failed; retried after its lease",
                    extra={"tenant_id": sub.tenant_id, "subscription_id": sub.id},
                )
        return len(due)

    async def _final_cycle(self, sub: Subscription, recorded: Recorded) -> None:
        """A `draft: false` subscription's cycle is invoiced at once; without seller details
        it stays open for the automatic finalization."""
        currency = recorded.parameters["invoice"]["currency"]
        try:
            await self._final(sub.tenant_id, recorded, currency)
        except SellerMissing:
            log.warning(
                "no seller details: the subscription's cycle stays open",
                extra={"tenant_id": sub.tenant_id, "subscription_id": sub.id},
            )


def _status(draft: bool) -> str:
    """`draft: true` (the seed's default): billing information waits to be approved."""
    return "draft" if draft else "open"


def usage_of(spec: PriceModelSpec, request: Bill) -> dict[str, Decimal]:
    """The bill's variables (either shape) as usage by variable."""
    try:
        return arguments(spec, request.variables)
    except UsageError as exc:
        raise ValidationFailed.field(f"variables.{exc.variable}", str(exc)) from exc


def usage_of_model(spec: PriceModelSpec, variables: Any, product_id: str) -> dict[str, Decimal]:
    """Variables (either shape) as usage that prices on `spec`, or a 422 naming the one that
    does not (a subscription's change of plan or units)."""
    try:
        usage = arguments(spec, variables)
        rate(spec, _decimals(usage), product_id, places_of(spec.currency))
    except UsageError as exc:
        raise ValidationFailed.field(f"variables.{exc.variable}", str(exc)) from exc
    return usage


def cycle_fields(sub: Subscription, today: date) -> BillingFields:
    due_days = sub.terms.get("due_days")
    values = {
        "customerNumber": sub.customer_number,
        "externalContractId": sub.external_contract_id,
        "orderChannel": sub.terms.get("order_channel"),
        "invoiceDate": today.isoformat(),
        "dueDate": (today + timedelta(days=due_days)).isoformat() if due_days is not None else None,
        "billToAddress": sub.terms["bill_to"],
        "shipToAddress": sub.terms["ship_to"],
    }
    return BillingFields.model_validate({k: v for k, v in values.items() if v is not None})


def _decimals(values: dict[str, Any]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in values.items()}


def _prorated(line: Line, period: Cycle, places: int) -> Line:
    amount = prorate(line.gross, period.days, period.full_days, places)
    label = f"{line.description} (prorated {period.days}/{period.full_days} days)"
    return Line(line.product_id, label, Decimal(1), amount, line.vat_percent)


def _one_off(item: dict[str, Any], product_id: str) -> Line:
    """A one-off line item (validated when the bill came in), as plain JSON data."""
    return Line(
        item.get("productID") or product_id,
        item["description"],
        Decimal(item["quantity"]),
        Decimal(item["grossUnitPrice"]),
        Decimal(item["vatPercent"]),
        vat_of(item),
    )
