"""Proration of subscription changes and cancellations, against amounts computed by hand:
leap-year Februaries, month-end anchors, changes on the anchor day, yearly plans."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from app.billing.change_plans import plan
from app.billing.models import PriceModelSpec
from app.billing.periods import Cycle
from app.billing.pricing import Line, prorate
from app.records import Subscription

BASIC = PriceModelSpec.model_validate(
    {
        "name": "Basic",
        "currency": "EUR",
        "vatPercent": 19,
        "interval": "month",
        "fee": Decimal("30.00"),
        "earlyTerminationFee": Decimal("20.00"),
    }
)
PRO = PriceModelSpec.model_validate(
    {
        "name": "Pro",
        "currency": "EUR",
        "vatPercent": 19,
        "interval": "month",
        "fee": Decimal("50.00"),
    }
)


def sub(anchor: str, next_start: str, interval: str = "month", **terms: Any) -> Subscription:
    return Subscription(
        id="sub_1",
        tenant_id="t",
        transaction_id="b",
        customer_number="C",
        external_contract_id="K",
        product_id="PLAN",
        price_model_id="basic",
        price_model_version=1,
        terms={
            "start": anchor,
            "anchor": anchor,
            "interval": interval,
            "in_arrears": False,
            "contract_end": None,
            "variables": {},
            **terms,
        },
        status="active",
        next_period_start=next_start,
        next_bill_at=0,
        cycles_billed=1,
        created_at=0,
        updated_at=0,
    )


def fee_lines(s: Subscription, spec: PriceModelSpec, part: Cycle) -> list[Line]:
    """A plan's fee for a part of a period, as the billing of cycles prorates it."""
    assert spec.fee is not None
    amount = (
        spec.fee if part.days == part.full_days else prorate(spec.fee, part.days, part.full_days, 2)
    )
    return [Line(s.product_id, f"{spec.name} {part.start}", Decimal(1), amount, spec.vatPercent)]


CHANGE = {"priceModelId": "pro", "priceModelVersion": 1, "variables": {}, "proration": "prorate"}


@pytest.mark.parametrize(
    ("anchor", "next_start", "day", "credit", "charge", "days"),
    [
        # 2024 is a leap year: Feb 1 → Mar 1 has 29 days, 15 of them from Feb 15.
        ("2024-02-01", "2024-03-01", "2024-02-15", "15.52", "25.86", (15, 29)),
        # 2023: 28 days, 14 from Feb 15: exactly half.
        ("2023-02-01", "2023-03-01", "2023-02-15", "15.00", "25.00", (14, 28)),
        # Anchored on Jan 31: the period ends on Feb 29 (the 31st where the month has one).
        ("2024-01-31", "2024-02-29", "2024-02-10", "19.66", "32.76", (19, 29)),
        # The last day of a 31-day period: one day left.
        ("2024-03-01", "2024-04-01", "2024-03-31", "0.97", "1.61", (1, 31)),
    ],
)
def test_a_change_inside_a_billed_period_credits_and_charges_its_rest(
    anchor: str, next_start: str, day: str, credit: str, charge: str, days: tuple[int, int]
):
    effects = plan(
        sub(anchor, next_start), "change", CHANGE, date.fromisoformat(day), BASIC, PRO, fee_lines, 0
    )
    assert effects is not None
    assert [line.gross for line in effects.credit] == [Decimal(credit)]
    assert [line.gross for line in effects.charge] == [Decimal(charge)]
    assert Decimal(credit) == (Decimal(30) * days[0] / days[1]).quantize(Decimal("0.01"))
    assert effects.after.price_model_id == "pro" and effects.after.next_period_start == next_start


def test_a_change_on_the_anchor_day_swaps_the_plan_without_proration():
    """The next period starts that day and is not billed yet: nothing to credit or charge."""
    effects = plan(
        sub("2024-02-01", "2024-03-01"),
        "change",
        CHANGE,
        date(2024, 3, 1),
        BASIC,
        PRO,
        fee_lines,
        0,
    )
    assert effects is not None and effects.credit == [] and effects.charge == []
    assert effects.after.price_model_id == "pro"


def test_a_change_beyond_the_next_unbilled_period_waits_for_its_cycle():
    assert (
        plan(
            sub("2024-02-01", "2024-03-01"),
            "change",
            CHANGE,
            date(2024, 3, 2),
            BASIC,
            PRO,
            fee_lines,
            0,
        )
        is None
    )


def test_a_yearly_plan_prorates_over_the_days_of_its_year():
    yearly = BASIC.model_copy(update={"interval": "year", "fee": Decimal("366.00")})
    pro = PRO.model_copy(update={"interval": "year", "fee": Decimal("732.00")})
    s = sub("2024-01-01", "2025-01-01", interval="year")
    effects = plan(s, "change", CHANGE, date(2024, 12, 1), yearly, pro, fee_lines, 0)
    assert effects is not None  # 31 of 2024's 366 days remain
    assert [line.gross for line in effects.credit] == [Decimal("31.00")]
    assert [line.gross for line in effects.charge] == [Decimal("62.00")]


def test_proration_none_swaps_without_billing():
    effects = plan(
        sub("2024-02-01", "2024-03-01"),
        "change",
        CHANGE | {"proration": "none"},
        date(2024, 2, 15),
        BASIC,
        PRO,
        fee_lines,
        0,
    )
    assert effects is not None and effects.credit == [] and effects.charge == []


def test_a_cancellation_credits_the_rest_and_charges_the_fee_before_the_contract_end():
    s = sub("2024-02-01", "2024-03-01", contract_end="2024-12-31")
    spec = {"proration": "prorate", "waiveTerminationFee": False, "reason": "moved"}
    effects = plan(s, "cancel", spec, date(2024, 2, 15), BASIC, None, fee_lines, 0)
    assert effects is not None
    assert [line.gross for line in effects.credit] == [Decimal("15.52")]
    assert [line.gross for line in effects.charge] == [Decimal("20.00")]
    assert effects.after.status == "cancelled" and effects.after.next_bill_at is None
    waived = plan(
        s,
        "cancel",
        spec | {"waiveTerminationFee": True},
        date(2024, 2, 15),
        BASIC,
        None,
        fee_lines,
        0,
    )
    assert waived is not None and waived.charge == []
    no_contract = plan(
        sub("2024-02-01", "2024-03-01"),
        "cancel",
        spec,
        date(2024, 2, 15),
        BASIC,
        None,
        fee_lines,
        0,
    )
    assert no_contract is not None and no_contract.charge == []  # no commitment, no fee


def test_in_arrears_a_change_bills_the_used_part_and_starts_the_next_period_that_day():
    s = sub("2024-02-01", "2024-02-01", in_arrears=True)
    effects = plan(s, "change", CHANGE, date(2024, 2, 15), BASIC, PRO, fee_lines, 0)
    assert effects is not None and effects.credit == []
    assert [line.gross for line in effects.charge] == [Decimal("14.48")]  # 30 × 14 / 29
    assert effects.cycle_start == date(2024, 2, 1)
    assert effects.after.next_period_start == "2024-02-15"
    assert effects.charged == (date(2024, 2, 1), date(2024, 2, 14))
