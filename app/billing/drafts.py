"""Drafts (seed 001's `draft: true`, Aria's manage_pending_invoice): billing information that
waits to be approved (finalized on an invoice of its own), discarded with a reason (kept, never
deleted) or regenerated (re-priced from its inputs and superseded by the new billing
information). Discard and supersede are notified, so the merchant's copy stays true.
"""

from __future__ import annotations

import re
from typing import Any

from app import jsoncodec
from app.billing import information
from app.billing.bills import BillService
from app.billing.service import BillingService, Built
from app.clock import Clock
from app.errors import NotFound, WrongState
from app.events import EventService
from app.invoicing.service import InvoiceService
from app.records import BillingRecord, Document
from app.store import Store
from app.store.invoices import GroupKey

DISCARDED, SUPERSEDED = information.DISCARDED, information.SUPERSEDED
_REVISION = re.compile(r"~(\d+)$")
Params = dict[str, Any]


def revised(transaction_id: str) -> str:
    """The transactionId of the billing information that supersedes this one: `t~2`, `t~3`…"""
    found = _REVISION.search(transaction_id)
    if found is None:
        return f"{transaction_id}~2"
    return f"{transaction_id[: found.start()]}~{int(found.group(1)) + 1}"


def notice(parameters: Params, **extra: Any) -> Params:
    """The parameters of a discard or supersede event: which billing information, and why."""
    return {
        "customerNumber": parameters["customerNumber"],
        "externalContractId": parameters["externalContractId"],
        "invoiceReference": parameters["invoice"]["invoiceReference"],
        "orderReference": parameters["orderReference"],
        "transactionId": parameters["transactionId"],
        **extra,
    }


class DraftService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventService,
        billing: BillingService,
        bills: BillService,
        invoices: InvoiceService,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._billing = billing
        self._bills = bills
        self._invoices = invoices

    async def get(self, tenant_id: str, transaction_id: str) -> tuple[BillingRecord, Params]:
        found = await self._store.billing.by_transaction(tenant_id, transaction_id)
        if found is None:
            raise NotFound(f"no billing information with transactionId {transaction_id!r}")
        return found

    async def approve(self, tenant_id: str, transaction_id: str) -> Document:
        """The draft on an invoice of its own, now (409 without seller details)."""
        record, _ = await self._draft(tenant_id, transaction_id, "approved")
        key = GroupKey(record.customer_number, record.external_contract_id, record.currency)
        invoice = await self._invoices.finalize_one(tenant_id, key, record.event_id)
        if invoice is None:
            raise WrongState(f"{transaction_id!r} was finalized or discarded meanwhile")
        return invoice

    async def discard(self, tenant_id: str, transaction_id: str, reason: str) -> BillingRecord:
        record, parameters = await self._draft(tenant_id, transaction_id, "discarded")
        event = await self._events.prepare(
            tenant_id,
            DISCARDED,
            notice(parameters, reason=reason),
            self._clock.now_ms(),
            ordering_key=record.external_contract_id,
        )
        if not await self._store.billing.discard(record, reason, event):
            raise WrongState(f"{transaction_id!r} is no draft any more")
        self._events.committed(len(event.deliveries))
        return (await self.get(tenant_id, transaction_id))[0]

    async def regenerate(self, tenant_id: str, transaction_id: str, reason: str) -> Built:
        """The draft re-priced from its inputs with the latest price model versions, under
        the next transactionId, superseding it; it keeps the inputs, so it can be regenerated
        in turn."""
        record, parameters = await self._draft(tenant_id, transaction_id, "regenerated")
        lines, used = await self._bills.repriced(record)
        draft = information.redraft(parameters, revised(transaction_id), lines)
        built = self._billing.build(
            tenant_id,
            record.source,
            draft,
            jsoncodec.loads(record.request)["request"],
            used=used,
            memo=record.memo,
            metadata=record.metadata,
            subscription_id=record.subscription_id,
            status="draft",
        )
        await self.supersede(record, parameters, built, reason)
        return built

    async def supersede(
        self, record: BillingRecord, parameters: Params, built: Built, reason: str
    ) -> None:
        """`built` replaces open or draft billing information, notified both ways in one
        transaction (WrongState when it was invoiced, discarded or replaced meanwhile)."""
        new_id = built.record.transaction_id
        superseded = await self._events.prepare(
            record.tenant_id,
            SUPERSEDED,
            notice(parameters, reason=reason, supersededBy=new_id),
            self._clock.now_ms(),
            ordering_key=record.external_contract_id,
        )
        available = await self._billing.prepared(built)
        if not await self._store.billing.supersede(record, reason, [superseded, available]):
            raise WrongState(f"{record.transaction_id!r} was finalized or replaced meanwhile")
        self._events.committed(len(superseded.deliveries) + len(available.deliveries))

    async def _draft(
        self, tenant_id: str, transaction_id: str, verb: str
    ) -> tuple[BillingRecord, Params]:
        record, parameters = await self.get(tenant_id, transaction_id)
        if record.status != "draft":
            hint = " (an invoice is corrected by a credit note or a rebill)"
            raise WrongState(
                f"only a draft is {verb}; {transaction_id!r} is {record.status}"
                + (hint if record.invoice_number else "")
            )
        return record, parameters
