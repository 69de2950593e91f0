"""Price models applied to usage, proration and billing cycles: pure table tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
from pydantic import ValidationError

from app.billing.bills import cycle, first_anchor
from app.billing.models import PriceModelSpec
from app.billing.pricing import UsageError, prorate, rate
from app.money import totals


def model(*components: dict[str, Any], **extra: Any) -> PriceModelSpec:
    spec = {"name": "m", "currency": "EUR", "vatPercent": D(19), "components": list(components)}
    return PriceModelSpec.model_validate(spec | extra)


def _lines(spec: PriceModelSpec, **usage: str) -> list[tuple[str, D, D]]:
    priced = rate(spec, {k: D(v) for k, v in usage.items()}, "P1", 2)
    return [(line.description, line.quantity, line.gross_unit_price) for line in priced]


TIERS = [
    {"upTo": D(50), "unitPrice": D("0.25")},
    {"upTo": D(200), "unitPrice": D("0.19")},
    {"upTo": None, "unitPrice": D("0.15")},
]


def test_flat_is_one_line_per_bill():
    assert _lines(model({"type": "flat", "name": "Unlock fee", "amount": D("1.00")})) == [
        ("Unlock fee", D(1), D("1.00"))
    ]


def test_per_unit_keeps_usage_as_quantity():
    spec = model(
        {
            "type": "per_unit",
            "name": "Driving time",
            "variable": "minutes",
            "unit": "min",
            "unitPrice": D("0.29"),
        }
    )
    assert _lines(spec, minutes="42") == [("Driving time 42 min", D(42), D("0.29"))]


def test_per_unit_with_included_units():
    spec = model(
        {
            "type": "per_unit",
            "name": "Energy",
            "variable": "kwh",
            "unit": "kWh",
            "unitPrice": D("0.39"),
            "included": D(10),
        }
    )
    assert _lines(spec, kwh="12.5") == [("Energy 12.5 kWh (10 kWh included)", D("2.5"), D("0.39"))]
    assert _lines(spec, kwh="4") == [("Energy 4 kWh (10 kWh included)", D(0), D("0.39"))]


@pytest.mark.parametrize(
    ("km", "amount"),
    [
        ("0", "0.00"),
        ("17", "4.25"),
        ("50", "12.50"),
        ("57", "13.83"),
        ("200", "41.00"),
        ("250", "48.50"),
    ],
)
def test_tiered_is_graduated(km: str, amount: str):
    """Each tier's units at its own price: 57 km = 50 × 0.25 + 7 × 0.19 = 13.83."""
    spec = model(
        {"type": "tiered", "name": "Distance", "variable": "km", "unit": "km", "tiers": TIERS}
    )
    assert _lines(spec, km=km) == [(f"Distance {km} km", D(1), D(amount))]


@pytest.mark.parametrize(
    ("km", "price"), [("17", "0.25"), ("50", "0.25"), ("57", "0.19"), ("201", "0.15")]
)
def test_volume_prices_every_unit_at_the_reached_tier(km: str, price: str):
    spec = model(
        {"type": "volume", "name": "Distance", "variable": "km", "unit": "km", "tiers": TIERS}
    )
    assert _lines(spec, km=km) == [(f"Distance {km} km", D(km), D(price))]


@pytest.mark.parametrize(("units", "blocks"), [("1", 1), ("100", 1), ("101", 2), ("0", 0)])
def test_package_charges_per_started_block(units: str, blocks: int):
    spec = model(
        {
            "type": "package",
            "name": "SMS",
            "variable": "sms",
            "packageSize": D(100),
            "packagePrice": D("5.00"),
        }
    )
    [(_, quantity, price)] = _lines(spec, sms=units)
    assert (quantity, price) == (D(blocks), D("5.00"))


def test_minimum_tops_up_and_maximum_caps():
    meter = {"type": "per_unit", "name": "Time", "variable": "minutes", "unitPrice": D("0.29")}
    low = _lines(model(meter, minimum=D("3.00")), minutes="5")
    assert low[-1] == ("Minimum charge", D(1), D("1.55"))
    high = _lines(model(meter, maximum=D("10.00")), minutes="100")
    assert high[-1] == ("Maximum charge cap", D(1), D("-19.00"))
    assert len(_lines(model(meter, minimum=D(1), maximum=D(100)), minutes="10")) == 1


def _billed(spec: PriceModelSpec, **usage: str) -> D:
    priced = rate(spec, {k: D(v) for k, v in usage.items()}, "P1", 2)
    return totals([(line.quantity, line.gross_unit_price, D(19)) for line in priced], 2).gross


def test_a_minimum_bills_exactly_the_minimum():
    """1.435 was topped up by round(3.00 − 1.435) = 1.57 and billed 3.01; the adjustment is
    3.00 − round(1.435) = 1.56, and the bill comes to 3.00."""
    meter = {"type": "per_unit", "name": "Time", "variable": "minutes", "unitPrice": D("0.287")}
    spec = model(meter, minimum=D("3.00"))
    assert _lines(spec, minutes="5")[-1] == ("Minimum charge", D(1), D("1.56"))
    assert _billed(spec, minutes="5") == D("3.00")


@pytest.mark.parametrize("minutes", ["1", "4.999", "5", "7", "17.3"])
def test_a_bound_always_bills_exactly_the_bound(minutes: str):
    meter = {"type": "per_unit", "name": "T", "variable": "minutes", "unitPrice": D("0.287")}
    low, high = model(meter, minimum=D("3.00")), model(meter, maximum=D("1.50"))
    assert _billed(low, minutes=minutes) == max(D("3.00"), _billed(model(meter), minutes=minutes))
    assert _billed(high, minutes=minutes) == min(D("1.50"), _billed(model(meter), minutes=minutes))


def test_a_cap_that_changes_nothing_adds_no_line():
    """10.004 is billed 10.00: a cap of 10.00 used to add a "-0.00" line."""
    meter = {"type": "per_unit", "name": "T", "variable": "minutes", "unitPrice": D("0.10004")}
    assert [d for d, _, _ in _lines(model(meter, maximum=D("10.00")), minutes="100")] == ["T 100"]


def test_bill_amounts_of_a_model_are_in_minor_units():
    with pytest.raises(ValidationError, match="minimum must have at most 2 decimals"):
        model({"type": "flat", "name": "f", "amount": D(1)}, minimum=D("3.005"))
    with pytest.raises(ValidationError, match="fee must have at most 0 decimals"):
        model(currency="JPY", interval="month", fee=D("9.5"))


def test_usage_must_fit_the_model():
    spec = model({"type": "per_unit", "name": "Time", "variable": "minutes", "unitPrice": D(1)})
    with pytest.raises(UsageError, match="required") as missing:
        rate(spec, {}, "P", 2)
    assert missing.value.variable == "minutes"
    with pytest.raises(UsageError, match="no component") as unknown:
        rate(spec, {"minutes": D(1), "kms": D(2)}, "P", 2)
    assert unknown.value.variable == "kms"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"tiers": [{"upTo": D(5), "unitPrice": D(1)}]}, "tiers"),
        (
            {
                "tiers": [
                    {"upTo": D(5), "unitPrice": D(1)},
                    {"upTo": D(3), "unitPrice": D(1)},
                    {"upTo": None, "unitPrice": D(1)},
                ]
            },
            "tiers",
        ),
        ({"tiers": []}, "tiers"),
    ],
)
def test_tiers_must_ascend_and_end_unbounded(bad: dict[str, Any], field: str):
    with pytest.raises(ValidationError, match=field):
        model({"type": "tiered", "name": "D", "variable": "km"} | bad)


def test_recurring_model_needs_interval_and_fee():
    with pytest.raises(ValidationError, match="interval and fee"):
        model(interval="month")
    assert model(interval="month", fee=D(30)).fee == D(30)


# -- proration and cycles ---------------------------------------------------------------------


def test_seed_proration():
    """$30/month started 2024-04-16 with anchor 2024-05-01: 15 of 30 days = $15.00."""
    terms = {"anchor": "2024-05-01", "interval": "month"}
    stub = cycle(terms, date(2024, 4, 16))
    assert (stub.end, stub.days, stub.full_days) == (date(2024, 5, 1), 15, 30)
    assert prorate(D(30), stub.days, stub.full_days, 2) == D("15.00")
    full = cycle(terms, date(2024, 5, 1))
    assert (full.end, full.partial) == (date(2024, 6, 1), False)


def test_month_end_anchor_keeps_its_day():
    """Anchored on Jan 31: Feb 29 (2024 is a leap year), then Mar 31 — not Mar 29."""
    terms = {"anchor": "2024-01-31", "interval": "month"}
    assert cycle(terms, date(2024, 1, 31)).end == date(2024, 2, 29)
    assert cycle(terms, date(2024, 2, 29)).end == date(2024, 3, 31)


def test_contract_end_cuts_the_last_period():
    terms = {"anchor": "2024-05-01", "interval": "month", "contract_end": "2024-06-10"}
    last = cycle(terms, date(2024, 6, 1))
    assert (last.end, last.days, last.full_days) == (date(2024, 6, 11), 10, 30)


def test_yearly_cycle_and_anchor_alignment():
    assert first_anchor(date(2024, 1, 1), date(2024, 4, 16), "month") == date(2024, 5, 1)
    assert first_anchor(date(2024, 4, 16), date(2024, 4, 16), "month") == date(2024, 4, 16)
    year = cycle({"anchor": "2024-01-01", "interval": "year"}, date(2024, 1, 1))
    assert (year.end, year.full_days) == (date(2025, 1, 1), 366)


@pytest.mark.parametrize(
    ("days", "full", "amount"), [(15, 30, "15.00"), (1, 31, "0.97"), (31, 31, "30.00")]
)
def test_prorate_rounds_half_up(days: int, full: int, amount: str):
    assert prorate(D(30), days, full, 2) == D(amount)
