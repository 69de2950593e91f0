"""Requests to change or cancel subscriptions (Aria's assign/replace/update_acct_plan,
modify_acct_plan_unit_instances, cancel_acct_plan, edit_acct_plan_queued_changes): validated,
dated, and queued as a row; one due now is applied at once (applying.py), a later one by the
worker when its date comes. Queued rows can be edited, withdrawn or executed now.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from app import jsoncodec
from app.billing import change_events, change_plans
from app.billing.applying import ChangeApplier
from app.billing.bills import BillService, usage_of_model
from app.billing.models import ChangeEdit, SubscriptionCancel, SubscriptionChange
from app.billing.periods import Cycle, containing
from app.billing.service import BillingService
from app.clock import Clock
from app.errors import Conflict, NotFound, ValidationFailed, WrongState
from app.events import EventService
from app.fields import Input
from app.ids import new_id
from app.invoicing.service import InvoiceService
from app.records import NewEvent, Subscription, SubscriptionChangeRecord
from app.store import Store

Params = dict[str, Any]


class ChangeService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        billing: BillingService,
        bills: BillService,
        applier: ChangeApplier,
        invoices: InvoiceService,
        events: EventService,
    ) -> None:
        self._events = events
        self._store = store
        self._clock = clock
        self._billing = billing
        self._bills = bills
        self._applier = applier
        self._invoices = invoices

    # -- requests ---------------------------------------------------------------------------

    async def change(
        self, tenant_id: str, sub_id: str, request: SubscriptionChange, key: str | None = None
    ) -> tuple[SubscriptionChangeRecord, bool]:
        """The change, and whether this request made it (False: a repeated Idempotency-Key)."""
        earlier = await self._repeated(tenant_id, sub_id, key, request)
        if earlier is not None:
            return earlier, False
        sub = await self._active(tenant_id, sub_id)
        spec = await self._change_spec(sub, request.priceModelId, request.variables)
        spec["proration"] = request.proration
        effective = request.effective or await self._default_effective(sub, spec)
        return await self._queue(
            sub, "change", _asked(spec, request, key), effective, request.effectiveDate
        )

    async def cancel(
        self, tenant_id: str, sub_id: str, request: SubscriptionCancel, key: str | None = None
    ) -> tuple[SubscriptionChangeRecord, bool]:
        earlier = await self._repeated(tenant_id, sub_id, key, request)
        if earlier is not None:
            return earlier, False
        sub = await self._active(tenant_id, sub_id)
        spec = request.model_dump(include={"proration", "waiveTerminationFee", "reason"})
        effective = request.effective or "period_end"
        return await self._queue(
            sub, "cancel", _asked(spec, request, key), effective, request.effectiveDate
        )

    async def _repeated(
        self, tenant_id: str, sub_id: str, key: str | None, request: Input
    ) -> SubscriptionChangeRecord | None:
        """The change an earlier request with this Idempotency-Key made: the same request gets
        it back, another is a 409 naming the differences."""
        await self._bills.subscription(tenant_id, sub_id)  # 404 for another tenant's
        earlier = await self._store.changes.by_key(sub_id, key)
        if earlier is None:
            return None
        differences = jsoncodec.differences(earlier.spec["asked"], _json(request))
        if differences:
            raise Conflict(f"Idempotency-Key {key!r} was used for a different request", differences)
        return earlier

    async def edit(
        self, tenant_id: str, sub_id: str, change_id: str, request: ChangeEdit
    ) -> SubscriptionChangeRecord:
        change = await self._queued(tenant_id, sub_id, change_id)
        sub = await self._active(tenant_id, sub_id)
        spec = dict(change.spec)
        if change.kind == "change" and (request.priceModelId or request.variables is not None):
            model = request.priceModelId or spec["priceModelId"]
            given = spec["variables"] if request.variables is None else request.variables
            spec |= await self._change_spec(sub, model, given)
        if request.proration is not None:
            spec["proration"] = request.proration
        day = date.fromisoformat(change.effective_date)
        if request.effectiveDate is not None:
            day = self._not_past(request.effectiveDate)
        await self._seller_if_now(sub, spec)
        edited = dataclasses.replace(
            change,
            spec=spec,
            effective_date=day.isoformat(),
            due_at=self._due(day),
            updated_at=self._clock.now_ms(),
        )
        return await self._rewritten(edited, sub, change_events.EDITED)

    async def withdraw(
        self, tenant_id: str, sub_id: str, change_id: str
    ) -> SubscriptionChangeRecord:
        change = await self._queued(tenant_id, sub_id, change_id)
        sub = await self._bills.subscription(tenant_id, sub_id)
        withdrawn = dataclasses.replace(change, status="cancelled", updated_at=self._clock.now_ms())
        return await self._rewritten(withdrawn, sub, change_events.WITHDRAWN)

    async def execute(
        self, tenant_id: str, sub_id: str, change_id: str
    ) -> SubscriptionChangeRecord:
        """A queued change applied now: effective today, whatever date it had. It is applied
        with its new date in one transaction: one that cannot be applied stays as it was."""
        change = await self._queued(tenant_id, sub_id, change_id)
        today, now = self._billing.today(), self._clock.now_ms()
        edited = dataclasses.replace(
            change, effective_date=today.isoformat(), due_at=now, updated_at=now
        )
        applied = await self._applier.apply(edited)
        if applied is None:
            raise WrongState(
                f"change {change_id} cannot take effect today: the period before it is not "
                "billed yet (it applies once it is)"
            )
        return applied

    async def get(self, tenant_id: str, sub_id: str, change_id: str) -> SubscriptionChangeRecord:
        found = await self._store.changes.get(tenant_id, change_id)
        if found is None or found.subscription_id != sub_id:
            raise NotFound(f"no change {change_id} of subscription {sub_id}")
        return found

    async def failed(self, tenant_id: str, limit: int) -> list[SubscriptionChangeRecord]:
        """The tenant's changes that could not be applied at their date, newest first."""
        return await self._store.changes.failed_of_tenant(tenant_id, limit)

    async def page(
        self, tenant_id: str, sub_id: str, cursor: str | None, limit: int
    ) -> list[SubscriptionChangeRecord]:
        await self._bills.subscription(tenant_id, sub_id)  # 404 for another tenant's
        return await self._store.changes.of_subscription(sub_id, cursor, limit)

    # -- helpers ----------------------------------------------------------------------------

    async def _queue(
        self,
        sub: Subscription,
        kind: str,
        spec: Params,
        effective: str,
        on: date | None,
    ) -> tuple[SubscriptionChangeRecord, bool]:
        await self._seller_if_now(sub, spec)
        day = self._effective_day(sub, effective, on)
        now = self._clock.now_ms()
        change = SubscriptionChangeRecord(
            id=new_id("sc", now),
            tenant_id=sub.tenant_id,
            subscription_id=sub.id,
            kind=kind,
            spec={**spec, "effective": effective},
            effective_date=day.isoformat(),
            due_at=now if effective == "now" else self._due(day),
            status="queued",
            result=None,
            created_at=now,
            updated_at=now,
            idempotency_key=spec.pop("key"),
        )
        if kind == "cancel" and await self._cancel_queued(sub):
            raise WrongState(f"a cancellation of {sub.id} is queued already")
        if change.due_at <= now:
            # Applied in this request, in one transaction with what it bills: a change that
            # cannot be applied answers its error and stores nothing.
            applied = await self._applier.apply(change, new=True)
            if applied is not None:
                return applied, applied.id == change.id
            # Its period is not billed yet: it waits (queued) for the worker, which applies it
            # right after that cycle.
        notice = await self._notice(change, sub, change_events.QUEUED)
        stored = await self._store.changes.insert(change, [notice])
        if stored.id != change.id:  # the same key, racing: the first one's change
            return stored, False
        self._committed(notice)
        return change, True

    async def _notice(
        self, change: SubscriptionChangeRecord, sub: Subscription, event_type: str
    ) -> NewEvent:
        return await self._events.prepare(
            sub.tenant_id, event_type, change_events.change_notice(change, sub),
            self._clock.now_ms(), ordering_key=sub.external_contract_id,
        )  # fmt: skip

    def _committed(self, notice: NewEvent) -> None:
        self._events.committed(len(notice.deliveries))

    async def _cancel_queued(self, sub: Subscription) -> bool:
        pending = await self._store.changes.of_subscription(sub.id, None, 100)
        return any(c.kind == "cancel" and c.status == "queued" for c in pending)

    def _effective_day(self, sub: Subscription, effective: str, on: date | None) -> date:
        today = self._billing.today()
        if effective == "now":
            return today
        if effective == "date":
            assert on is not None
            return self._not_past(on)
        return containing(sub.terms, today).end

    def _not_past(self, day: date) -> date:
        if day < self._billing.today():
            raise ValidationFailed.field("effectiveDate", "must not be in the past")
        return day

    def _due(self, day: date) -> int:
        return self._billing.midnight_ms(day)

    async def _default_effective(self, sub: Subscription, spec: Params) -> str:
        """An upgrade takes effect now, a downgrade (or the same price) at the period end."""
        old = await self._applier.spec(sub.tenant_id, sub.price_model_id, sub.price_model_version)
        new = await self._applier.spec(
            sub.tenant_id, spec["priceModelId"], spec["priceModelVersion"]
        )
        period = containing(sub.terms, self._billing.today())
        full = Cycle(period.end, period.end, period.full_days, period.full_days)
        target = dataclasses.replace(sub, terms={**sub.terms, "variables": spec["variables"]})
        before = change_plans.gross(self._applier.lines(sub, old, full))
        after = change_plans.gross(self._applier.lines(target, new, full))
        return "now" if after > before else "period_end"

    async def _change_spec(self, sub: Subscription, model_id: str | None, variables: Any) -> Params:
        """The new plan as stored: the model's latest version, the usage it is priced with."""
        model_id = model_id or sub.price_model_id
        found = await self._billing.price_models.resolve(sub.tenant_id, model_id)
        if found is None:
            raise ValidationFailed.field("priceModelId", "unknown price model")
        model, new = found
        old = await self._applier.spec(sub.tenant_id, sub.price_model_id, sub.price_model_version)
        if new.interval != old.interval or new.currency != old.currency:
            raise ValidationFailed.field(
                "priceModelId",
                f"the subscription bills {old.currency} every {old.interval}; a plan that "
                f"bills {new.currency} every {new.interval} is a new subscription",
            )
        given = sub.terms["variables"] if variables is None else variables
        usage = usage_of_model(new, given, sub.product_id)
        return {"priceModelId": model.id, "priceModelVersion": model.version, "variables": usage}

    async def _seller_if_now(self, sub: Subscription, spec: Params) -> None:
        if spec.get("proration") == "invoice_now":
            await self._invoices.seller(sub.tenant_id)  # 409 before anything is written

    async def run_due(self, limit: int = 100) -> int:
        return await self._applier.run_due(limit)

    async def _active(self, tenant_id: str, sub_id: str) -> Subscription:
        sub = await self._bills.subscription(tenant_id, sub_id)
        if sub.status != "active":
            raise WrongState(f"subscription {sub_id} is {sub.status}")
        return sub

    async def _queued(
        self, tenant_id: str, sub_id: str, change_id: str
    ) -> SubscriptionChangeRecord:
        change = await self.get(tenant_id, sub_id, change_id)
        if change.status != "queued":
            raise WrongState(f"change {change_id} is {change.status}")
        return change

    async def _rewritten(
        self, change: SubscriptionChangeRecord, sub: Subscription, event_type: str
    ) -> SubscriptionChangeRecord:
        notice = await self._notice(change, sub, event_type)
        if not await self._store.changes.rewrite(change, [notice]):
            raise WrongState(f"change {change.id} was applied meanwhile")
        self._committed(notice)
        return change


def _json(request: Input) -> Params:
    data: Params = jsoncodec.loads(jsoncodec.dumps(request.model_dump(exclude_unset=True)))
    return data


def _asked(spec: Params, request: Input, key: str | None) -> Params:
    """The spec with the request as asked (to compare a repeat with) and its key."""
    return {**spec, "asked": _json(request), "key": key}
