"""Billing information as rows: written with its event (store.events) and read by the billing
store, so both import it from here."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app import jsoncodec
from app.money import plain
from app.records import BillingRecord
from app.store.connector import Row
from app.store.rows import from_row, to_row


def billing_columns(b: BillingRecord) -> dict[str, Any]:
    return to_row(
        b,
        total_gross=plain(b.total_gross),
        total_net=plain(b.total_net),
        price_models=jsoncodec.dumps([list(p) for p in b.price_models]).decode(),
        metadata=jsoncodec.dumps(b.metadata).decode(),
    )


def billing_from_row(row: Row) -> BillingRecord:
    return from_row(
        BillingRecord,
        row,
        total_gross=Decimal(row["total_gross"]),
        total_net=Decimal(row["total_net"]),
        request=bytes(row["request"]),
        price_models=tuple((p[0], int(p[1])) for p in jsoncodec.loads(row["price_models"])),
        metadata=jsoncodec.loads(row["metadata"]),
    )
