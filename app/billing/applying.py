"""Applying subscription changes: once each, in one transaction with what they bill.

What a change on a date bills is change_plans' (pure); this module finds where it goes — the
period's open billing information (superseded with the proration lines added) or, for an
invoiced period, a credit note of the invoice and new billing information — and writes it all
with the change marked applied and the subscription moved (store.subscription_changes).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import date
from decimal import Decimal
from typing import Any

from app import jsoncodec
from app.billing import change_plans, information
from app.billing.bills import BillService, cycle_fields
from app.billing.change_events import FAILED as CHANGE_FAILED
from app.billing.change_events import change_notice
from app.billing.change_plans import Plan
from app.billing.drafts import SUPERSEDED, DraftService, notice, revised
from app.billing.models import PriceModelSpec
from app.billing.period_credits import Billed, Take, allocate, invoiced_lines
from app.billing.periods import ONE_DAY, Cycle, cycle
from app.billing.pricing import Line
from app.billing.service import BillingService, places_of
from app.clock import Clock
from app.errors import ApiError, Conflict
from app.events import EventService
from app.invoicing import documents
from app.invoicing.documents import Credit, CreditRefused
from app.invoicing.service import InvoiceService
from app.records import BillingRecord, NewEvent, Subscription, SubscriptionChangeRecord
from app.store import IntegrityError, Store, StoreUnavailable
from app.store.invoices import GroupKey, Stale, Written
from app.store.subscription_changes import Application, PeriodCredit

log = logging.getLogger("billhook.billing")

CHANGED, CANCELLED = information.SUBSCRIPTION_CHANGED, information.SUBSCRIPTION_CANCELLED
ATTEMPTS = 3  # a cycle billed meanwhile: compute again
Params = dict[str, Any]


class ChangeApplier:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventService,
        billing: BillingService,
        bills: BillService,
        drafts: DraftService,
        invoices: InvoiceService,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._billing = billing
        self._bills = bills
        self._drafts = drafts
        self._invoices = invoices

    # -- the worker -------------------------------------------------------------------------

    async def run_due(self, limit: int = 100) -> int:
        """Apply every queued change whose date has come (the worker calls this before the
        subscription cycles: a change dated on a period's start prices that period). One that
        cannot be applied ends `failed` with its reason, once: it never blocks the cycles nor
        comes back on every run; only a store that is away is tried again."""
        applied = 0
        for change in await self._store.changes.due(self._clock.now_ms(), limit):
            try:
                applied += await self.apply(change) is not None
            except StoreUnavailable:
                ids = {"tenant_id": change.tenant_id, "change_id": change.id}
                log.warning("the store is away: a due change waits for the next run", extra=ids)
            except Exception as exc:
                await self._failed(change, exc)
        return applied

    async def apply(
        self, change: SubscriptionChangeRecord, new: bool = False
    ) -> SubscriptionChangeRecord | None:
        """Apply it once; None while it waits (its period is not billed yet) or when another
        process applied it first. `new`: a change applied in its own request, written in the
        same transaction as its effects (a failure stores nothing); a repeat of its
        Idempotency-Key racing it gets the earlier change."""
        for _ in range(ATTEMPTS):
            sub = await self._bills.subscription(change.tenant_id, change.subscription_id)
            if sub.status != "active":
                return None if new else await self._void(change, sub)
            application = await self._application(change, sub, new)
            if application is None:
                return None
            try:
                notes = await self._store.changes.apply(application)
            except IntegrityError:
                earlier = await self._store.changes.by_key(sub.id, change.idempotency_key)
                if new and earlier is not None:
                    return earlier
                raise
            except (Stale, CreditRefused):  # moved meanwhile (a credit note, a cycle): again
                current = await self._store.changes.get(change.tenant_id, change.id)
                if not new and (current is None or current.status != "queued"):
                    return None
                continue
            self._events.committed(sum(len(e.deliveries) for e in application.events))
            return await self._after(application.change, application, notes)
        if new:
            raise Conflict("the subscription changed while this change was computed: send it again")
        return None

    async def _failed(self, change: SubscriptionChangeRecord, exc: Exception) -> None:
        """It cannot be applied: `failed` with why, an operational event, one log line."""
        reason = exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
        log.error(
            "a subscription change could not be applied at its date: it is failed",
            exc_info=not isinstance(exc, ApiError),
            extra={"tenant_id": change.tenant_id, "change_id": change.id, "reason": reason},
        )
        sub = await self._bills.subscription(change.tenant_id, change.subscription_id)
        failed = dataclasses.replace(change, updated_at=self._clock.now_ms())
        parameters = {**change_notice(change, sub), "status": "failed", "reason": reason}
        notice_ = await self._events.prepare(
            sub.tenant_id, CHANGE_FAILED, parameters, self._clock.now_ms(),
            ordering_key=sub.external_contract_id,
        )  # fmt: skip
        if await self._store.changes.fail(failed, reason, notice_):
            self._events.committed(len(notice_.deliveries))

    # -- applying ---------------------------------------------------------------------------

    async def _application(
        self, change: SubscriptionChangeRecord, sub: Subscription, in_request: bool = False
    ) -> Application | None:
        day = date.fromisoformat(change.effective_date)
        old = await self.spec(sub.tenant_id, sub.price_model_id, sub.price_model_version)
        target = None
        if change.kind == "change":
            spec = change.spec
            target = await self.spec(sub.tenant_id, spec["priceModelId"], spec["priceModelVersion"])
        now = self._clock.now_ms()
        effects = change_plans.plan(
            sub, change.kind, change.spec, day, old, target, self.lines, now
        )
        if effects is None:
            return None
        return await self._written(change, sub, effects, old, in_request)

    def lines(self, sub: Subscription, spec: PriceModelSpec, part: Cycle) -> list[Line]:
        first = sub.cycles_billed == 0 and part.start.isoformat() == sub.terms["start"]
        return self._bills.period_lines(sub, spec, part, places_of(spec.currency), first)

    async def _written(
        self,
        change: SubscriptionChangeRecord,
        sub: Subscription,
        effects: Plan,
        old: PriceModelSpec,
        new: bool = False,
    ) -> Application:
        reason = f"subscription {change.kind} {change.id}"
        result: Params = {"billed": [], "superseded": [], "credited": []}
        takes = await self._takes(sub, effects)
        cycle = await self._period_information(sub, effects.billed_period)
        cycle_open = cycle is not None and cycle[0].status in ("draft", "open") and bool(takes)
        charge, events, superseded = effects.charge, [], []
        for take in takes:
            if take.billed.invoice is not None:
                continue
            added = take.lines
            if cycle_open and cycle is not None and take.billed.record.id == cycle[0].id:
                added, charge = added + charge, []  # one document per period while it is open
            events += await self._superseding(take.billed.record, take.billed.parameters, added,
                                              reason)  # fmt: skip
            replaced = take.billed.record.transaction_id
            superseded.append((take.billed.record, reason, revised(replaced)))
            result["superseded"].append(replaced)
            result["billed"].append(revised(replaced))
        credits = self._credits(sub, takes, reason)
        result["credited"] = [credit.invoice_number for credit in credits]
        if charge:
            tid = self._charge_id(sub, change, effects)
            events.append(await self._charged(sub, effects, charge, tid, old))
            result["billed"].append(tid)
        events.append(await self._notice(change, effects.after, result))
        return Application(change, result, sub, effects.after, events, superseded, credits, new=new)

    async def _takes(self, sub: Subscription, effects: Plan) -> list[Take]:
        """Where the credit for the unused part comes from (period_credits.py)."""
        if not effects.credit or effects.billed_period is None:
            return []
        rate = effects.credit[0].vat_percent
        period = cycle(sub.terms, effects.billed_period)
        sources = []
        for record, parameters in await self._store.billing.of_subscription(sub.tenant_id, sub.id):
            start = date.fromisoformat(parameters["invoice"]["billingStartDate"])
            if record.status in ("superseded", "discarded") or not (
                period.start <= start < period.end
            ):
                continue
            sources.append(await self._billed(record, parameters, rate))
        return allocate(effects.credit, sources)

    async def _billed(self, record: BillingRecord, parameters: Params, rate: Decimal) -> Billed:
        if record.invoice_number is None:
            return Billed(record, parameters)
        number, tenant_id = record.invoice_number, record.tenant_id
        invoice = documents.load((await self._invoices.get(tenant_id, number)).document)
        notes = [documents.load(n.document)
                 for n in await self._invoices.credit_notes(tenant_id, number)]  # fmt: skip
        lines = invoiced_lines(invoice, notes, record.transaction_id, rate)
        return Billed(record, parameters, number, lines)

    def _credits(self, sub: Subscription, takes: list[Take], reason: str) -> list[PeriodCredit]:
        """One credit note per invoice the credit is taken from."""
        by_invoice: dict[str, list[Credit]] = {}
        for take in takes:
            if take.billed.invoice is not None:
                by_invoice.setdefault(take.billed.invoice, []).extend(take.credits)
        year = self._billing.today().year
        return [
            PeriodCredit(number, year, self._invoices.credit_builder(sub.tenant_id, items, reason))
            for number, items in by_invoice.items()
        ]

    def _charge_id(self, sub: Subscription, change: SubscriptionChangeRecord, effects: Plan) -> str:
        if effects.cycle_start is not None:  # in arrears: the cycle of that period, now
            return f"{sub.id}:{effects.cycle_start.isoformat()}"
        return f"{sub.id}:{change.kind}:{change.id}"

    async def _period_information(
        self, sub: Subscription, start: date | None
    ) -> tuple[BillingRecord, Params] | None:
        """The billing information of a billed period, as its latest supersession left it."""
        if start is None:
            return None
        transaction_id: str | None = f"{sub.id}:{start.isoformat()}"
        found = None
        while transaction_id is not None:
            found = await self._store.billing.by_transaction(sub.tenant_id, transaction_id)
            if found is None:
                return None
            transaction_id = found[0].superseded_by
        return found

    async def _superseding(
        self, record: BillingRecord, parameters: Params, added: list[Line], reason: str
    ) -> list[NewEvent]:
        """The period's billing information again, with the proration lines added."""
        lines = information.lines_of(parameters) + added
        draft = information.redraft(parameters, revised(record.transaction_id), lines)
        raw = jsoncodec.loads(record.request)["request"]
        adjustments = [
            *raw.get("adjustments", []),
            *(information.item(line, None) for line in added),
        ]
        built = self._billing.build(
            record.tenant_id,
            record.source,
            draft,
            {**raw, "adjustments": adjustments},
            used=list(record.price_models),
            memo=record.memo,
            metadata=record.metadata,
            subscription_id=record.subscription_id,
            status=record.status,
        )
        notice_ = await self._events.prepare(
            record.tenant_id,
            SUPERSEDED,
            notice(parameters, reason=reason, supersededBy=draft.transaction_id),
            self._clock.now_ms(),
            ordering_key=record.external_contract_id,
        )
        return [notice_, await self._billing.prepared(built)]

    def _cut_cycle(
        self, sub: Subscription, start: date, last: date, lines: list[Line], old: PriceModelSpec
    ) -> dict[str, Any]:
        """The inputs of a cycle a change cut short (in arrears, the used part): where it ends,
        and what it bills beside the period's lines (a termination fee), so that regenerating
        its draft re-prices the same days, not the whole period."""
        until = last + ONE_DAY
        full = cycle(sub.terms, start)
        part = Cycle(start, until, (until - start).days, full.full_days)
        extra = lines[len(self.lines(sub, old, part)) :]
        return {"subscription": sub.id, "period": start.isoformat(), "until": until.isoformat(),
                "adjustments": [information.item(line, None) for line in extra]}  # fmt: skip

    async def _charged(
        self, sub: Subscription, effects: Plan, lines: list[Line], tid: str, old: PriceModelSpec
    ) -> NewEvent:
        assert effects.charged is not None
        draft = await self._billing.draft(
            sub.tenant_id,
            cycle_fields(sub, self._billing.today()),
            tid,
            old.currency,
            lines,
            billing_start=effects.charged[0],
            billing_end=effects.charged[1],
        )
        source = "subscription" if effects.cycle_start else "subscription_change"
        raw = (
            {"subscription": sub.id, "period": effects.charged[0].isoformat(), "change": tid}
            if effects.cycle_start is None
            else self._cut_cycle(sub, effects.cycle_start, effects.charged[1], lines, old)
        )
        built = self._billing.build(
            sub.tenant_id,
            source,
            draft,
            raw,
            used=[(sub.price_model_id, sub.price_model_version)],
            memo=sub.terms.get("memo"),
            metadata=sub.terms.get("metadata") or {},
            subscription_id=sub.id,
            status="draft" if sub.terms.get("draft", True) else "open",
        )
        return await self._billing.prepared(built)

    async def _notice(
        self, change: SubscriptionChangeRecord, after: Subscription, result: Params
    ) -> NewEvent:
        parameters = {
            "changeId": change.id,
            "customerNumber": after.customer_number,
            "effectiveDate": change.effective_date,
            "externalContractId": after.external_contract_id,
            "priceModelId": after.price_model_id,
            "priceModelVersion": after.price_model_version,
            "proration": change.spec["proration"],
            "billed": result["billed"],
            "status": after.status,
            "subscriptionId": after.id,
        }
        if change.kind == "cancel":
            parameters["reason"] = change.spec.get("reason")
        event_type = CANCELLED if change.kind == "cancel" else CHANGED
        return await self._events.prepare(
            after.tenant_id,
            event_type,
            parameters,
            self._clock.now_ms(),
            ordering_key=after.external_contract_id,
        )

    async def _after(
        self, change: SubscriptionChangeRecord, application: Application, notes: list[Written]
    ) -> SubscriptionChangeRecord:
        """invoice_now: what it billed is finalized at once; the result names it all."""
        result = dict(application.result)
        result["creditNotes"] = [note.document.number for note in notes]
        if change.spec["proration"] == "invoice_now":
            result["invoices"] = await self._invoice_now(change.tenant_id, result["billed"])
        if result != application.result:
            await self._store.changes.set_result(change.id, result)
        return await self._changed(change)

    async def _invoice_now(self, tenant_id: str, billed: list[str]) -> list[str]:
        numbers = []
        for tid in billed:
            record, _ = await self._drafts.get(tenant_id, tid)
            key = GroupKey(record.customer_number, record.external_contract_id, record.currency)
            invoice = await self._invoices.finalize_one(tenant_id, key, record.event_id)
            if invoice is not None:
                numbers.append(invoice.number)
        return numbers

    async def _void(
        self, change: SubscriptionChangeRecord, sub: Subscription
    ) -> SubscriptionChangeRecord | None:
        """The subscription ended before the change's date: the change lapses."""
        lapsed = dataclasses.replace(
            change,
            status="cancelled",
            updated_at=self._clock.now_ms(),
            result={"lapsed": f"the subscription is {sub.status}"},
        )
        if await self._store.changes.rewrite(lapsed):
            await self._store.changes.set_result(change.id, lapsed.result or {})
        return None

    async def spec(self, tenant_id: str, model_id: str, version: int) -> PriceModelSpec:
        found = await self._billing.price_models.resolve(tenant_id, model_id, version)
        assert found is not None, "a price model version never disappears"
        return found[1]

    async def _changed(self, change: SubscriptionChangeRecord) -> SubscriptionChangeRecord:
        found = await self._store.changes.get(change.tenant_id, change.id)
        assert found is not None
        return found
