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
from typing import Any

from app import jsoncodec
from app.billing import change_plans, information
from app.billing.bills import BillService, cycle_fields
from app.billing.change_plans import Plan, negated
from app.billing.drafts import SUPERSEDED, DraftService, notice, revised
from app.billing.models import PriceModelSpec
from app.billing.periods import Cycle
from app.billing.pricing import Line
from app.billing.service import BillingService, places_of
from app.clock import Clock
from app.events import EventService
from app.invoicing import documents
from app.invoicing.documents import Credit
from app.invoicing.service import InvoiceService
from app.records import BillingRecord, NewEvent, Subscription, SubscriptionChangeRecord
from app.store import Store
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
        subscription cycles: a change dated on a period's start prices that period)."""
        applied = 0
        for change in await self._store.changes.due(self._clock.now_ms(), limit):
            try:
                applied += await self.apply(change) is not None
            except Exception:
                log.exception(
                    "applying a subscription change failed; retried on the next run",
                    extra={"tenant_id": change.tenant_id, "change_id": change.id},
                )
        return applied

    async def apply(self, change: SubscriptionChangeRecord) -> SubscriptionChangeRecord | None:
        """Apply it once; None while it waits (its period is not billed yet) or when another
        process applied it first."""
        for _ in range(ATTEMPTS):
            sub = await self._bills.subscription(change.tenant_id, change.subscription_id)
            if sub.status != "active":
                return await self._void(change, sub)
            application = await self._application(change, sub)
            if application is None:
                return None
            try:
                credit = await self._store.changes.apply(application)
            except Stale:
                current = await self._store.changes.get(change.tenant_id, change.id)
                if current is None or current.status != "queued":
                    return None
                continue
            self._events.committed(sum(len(e.deliveries) for e in application.events))
            return await self._after(change, application, credit)
        return None

    # -- applying ---------------------------------------------------------------------------

    async def _application(
        self, change: SubscriptionChangeRecord, sub: Subscription
    ) -> Application | None:
        day = date.fromisoformat(change.effective_date)
        old = await self.spec(sub.tenant_id, sub.price_model_id, sub.price_model_version)
        new = None
        if change.kind == "change":
            spec = change.spec
            new = await self.spec(sub.tenant_id, spec["priceModelId"], spec["priceModelVersion"])
        now = self._clock.now_ms()
        effects = change_plans.plan(sub, change.kind, change.spec, day, old, new, self.lines, now)
        if effects is None:
            return None
        return await self._written(change, sub, effects, old)

    def lines(self, sub: Subscription, spec: PriceModelSpec, part: Cycle) -> list[Line]:
        first = sub.cycles_billed == 0 and part.start.isoformat() == sub.terms["start"]
        return self._bills.period_lines(sub, spec, part, places_of(spec.currency), first)

    async def _written(
        self,
        change: SubscriptionChangeRecord,
        sub: Subscription,
        effects: Plan,
        old: PriceModelSpec,
    ) -> Application:
        reason = f"subscription {change.kind} {change.id}"
        result: Params = {"billed": [], "superseded": None, "credited": None}
        events: list[NewEvent] = []
        superseded = credit = None
        period = await self._period_information(sub, effects.billed_period)
        charge = effects.charge
        if effects.credit and period is not None and period[0].status in ("draft", "open"):
            record, parameters = period
            added = [negated(line) for line in effects.credit] + charge
            events += await self._superseding(record, parameters, added, reason)
            superseded, charge = (record, reason), []
            result["superseded"] = record.transaction_id
            result["billed"].append(revised(record.transaction_id))
        elif effects.credit and period is not None and period[0].invoice_number:
            credit = await self._credit(
                sub, period[0].invoice_number, period[0].transaction_id, effects, reason
            )
            result["credited"] = period[0].invoice_number
        if charge:
            tid = self._charge_id(sub, change, effects)
            events.append(await self._charged(sub, effects, charge, tid, old))
            result["billed"].append(tid)
        after = effects.after
        events.append(await self._notice(change, after, result))
        return Application(change.id, result, sub, after, events, superseded, credit)

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
            else {"subscription": sub.id, "period": effects.cycle_start.isoformat()}
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

    async def _credit(
        self, sub: Subscription, number: str, tid: str, effects: Plan, reason: str
    ) -> PeriodCredit:
        """A credit note of the invoiced period: the unused amount, taken from that period's
        lines on the invoice in order."""
        invoice = documents.load((await self._invoices.get(sub.tenant_id, number)).document)
        left = change_plans.gross(effects.credit)
        credits = []
        for line in invoice["invoice"]["items"]:
            if left <= 0 or line.get("transactionId") != tid or line["grossAmount"] <= 0:
                continue
            take = min(left, line["grossAmount"])
            credits.append(Credit(line["lineNumber"], amount=take))
            left -= take
        build = self._invoices.credit_builder(sub.tenant_id, credits, reason)
        return PeriodCredit(number, self._billing.today().year, build)

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
        self, change: SubscriptionChangeRecord, application: Application, credit: Written | None
    ) -> SubscriptionChangeRecord:
        """invoice_now: what it billed is finalized at once; the result names it all."""
        result = dict(application.result)
        if credit is not None:
            result["creditNote"] = credit.document.number
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
