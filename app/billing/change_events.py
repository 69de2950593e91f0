"""What a subscription change tells the merchant while it waits and when it ends: queued,
edited, withdrawn (subscriptions/subscriptionChange…), or failed at its date — an operational
event (subscription.change.failed) for the endpoints that list it. Applied changes and
cancellations are subscriptions/subscriptionChanged and …Cancelled (applying.py)."""

from __future__ import annotations

from typing import Any

from app.records import Subscription, SubscriptionChangeRecord

QUEUED = "subscriptions/subscriptionChangeQueued"
EDITED = "subscriptions/subscriptionChangeEdited"
WITHDRAWN = "subscriptions/subscriptionChangeWithdrawn"
FAILED = "subscription.change.failed"
TYPES = (QUEUED, EDITED, WITHDRAWN)


def change_notice(change: SubscriptionChangeRecord, sub: Subscription) -> dict[str, Any]:
    """The parameters every one of these events carries: which change, of which subscription,
    to what plan (a cancellation: the plan it ends), from when."""
    spec = change.spec
    model_id = spec.get("priceModelId", sub.price_model_id)
    version = spec.get("priceModelVersion", sub.price_model_version)
    return {
        "changeId": change.id,
        "customerNumber": sub.customer_number,
        "effectiveDate": change.effective_date,
        "externalContractId": sub.external_contract_id,
        "kind": change.kind,
        "priceModelId": model_id,
        "priceModelVersion": version,
        "proration": spec["proration"],
        "status": change.status,
        "subscriptionId": sub.id,
    }
