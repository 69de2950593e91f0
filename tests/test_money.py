"""The rounding contract (docs/billing.md): vectors, then properties checked by hypothesis."""

from __future__ import annotations

import random
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import jsoncodec
from app.money import (
    FUNDS,
    UnknownCurrency,
    allocate,
    decimals,
    minor_units,
    net_of,
    plain,
    round_half_up,
    to_minor,
    totals,
)


@pytest.mark.parametrize(("currency", "places"), [("EUR", 2), ("USD", 2), ("JPY", 0), ("KWD", 3)])
def test_minor_units(currency: str, places: int):
    assert minor_units(currency) == places


@pytest.mark.parametrize(
    "code",
    ["XXX", "EURO", "eur", "ABC", "XAU", "XDR", *sorted(FUNDS)],
)
def test_unknown_or_unbillable_currencies(code: str):
    """Not ISO 4217 codes, and real codes that cannot be billed: XXX ("no currency"), XAU
    (gold), XDR (a special drawing right), and every ISO 4217 fund code (BOV, CHE, …, UYW),
    which the iso4217 package gives minor units although nobody is billed in them."""
    with pytest.raises(UnknownCurrency):
        minor_units(code)


@pytest.mark.parametrize(
    ("amount", "places", "rounded"),
    [
        (D("0.005"), 2, D("0.01")),
        (D("-0.005"), 2, D("-0.01")),
        (D("0.0049"), 2, D("0.00")),
        (D("2.5"), 0, D("3")),
        (D("1.0005"), 3, D("1.001")),
    ],
)
def test_round_half_up_goes_away_from_zero_on_ties(amount: D, places: int, rounded: D):
    assert round_half_up(amount, places) == rounded


def _lines(*rows: tuple[str, str, str]) -> list[tuple[D, D, D]]:
    return [(D(q), D(p), D(r)) for q, p, r in rows]


def test_seed_vector_groups_before_rounding():
    """11.99 and −4.00 at 19 %: gross 7.99, net 6.71 (rounding each line first gives 6.72)."""
    result = totals(_lines(("1.0", "11.99", "19.0"), ("1.0", "-4.0", "19.0")), 2)
    assert (result.gross, result.net, result.vat) == (D("7.99"), D("6.71"), D("1.28"))
    per_line = net_of(D("11.99"), D(19), 2) + net_of(D("-4.00"), D(19), 2)
    assert per_line == D("6.72")  # the wrong answer the contract avoids


def test_single_line_rounds_half_up_not_down():
    """11.99 at 19 % → net 10.08 (truncation would give 10.07)."""
    assert totals(_lines(("1", "11.99", "19")), 2).net == D("10.08")


def test_149_95_at_19_percent():
    result = totals(_lines(("1", "149.95", "19")), 2)
    assert (result.net, result.vat) == (D("126.01"), D("23.94"))


def test_mixed_rates_round_each_group_on_its_own():
    """19 % and 7 % lines: one group per rate, each rounded separately, nets summed."""
    result = totals(_lines(("1", "11.99", "19"), ("2", "3.50", "7"), ("1", "1.07", "7")), 2)
    groups = {g.vat_percent: g for g in result.groups}
    assert (groups[D(19)].gross, groups[D(19)].net) == (D("11.99"), D("10.08"))
    assert (groups[D(7)].gross, groups[D(7)].net) == (D("8.07"), D("7.54"))
    assert result.gross == D("20.06") and result.net == D("17.62")


def test_rates_written_differently_are_one_group():
    """19, 19.0 and 19.00 are the same rate."""
    result = totals(_lines(("1", "1.00", "19"), ("1", "1.00", "19.0"), ("1", "1.00", "19.00")), 2)
    assert len(result.groups) == 1


def test_sub_cent_lines_across_groups_still_add_up():
    """0.005 at 19 % and 0.005 at 7 %: the total rounds once (0.01), and the groups share it."""
    result = totals(_lines(("1", "0.005", "19"), ("1", "0.005", "7")), 2)
    assert result.gross == D("0.01")
    assert sum(g.gross for g in result.groups) == D("0.01")


def test_zero_decimal_currency():
    result = totals(_lines(("3", "333", "10")), 0)
    assert (result.gross, result.net) == (D("999"), D("908"))


@pytest.mark.parametrize(
    ("total", "parts", "expected"),
    [
        ("1.00", ["0.333", "0.333", "0.334"], ["0.33", "0.33", "0.34"]),
        ("0.01", ["0.005", "0.005"], ["0.01", "0.00"]),  # tie: the earlier part
        ("-0.01", ["-0.005", "-0.005"], ["0.00", "-0.01"]),  # the unit goes up, to the first
        ("10.00", ["10"], ["10.00"]),
    ],
)
def test_allocate_largest_remainder(total: str, parts: list[str], expected: list[str]):
    assert allocate(D(total), [D(p) for p in parts], 2) == [D(e) for e in expected]


def test_allocate_refuses_a_total_that_is_not_the_sum():
    with pytest.raises(ValueError, match="rounded sum"):
        allocate(D("5.00"), [D("1"), D("1")], 2)


def test_decimals_are_what_the_value_needs_not_how_it_was_written():
    """`amount: 0.010` was refused as "more than 2 decimals": it is 0.01."""
    written = ("1", "1.50", "0.000001", "1E+2", "0.010", "0.0000010", "0.00", "12.3400")
    assert [decimals(D(x)) for x in written] == [0, 1, 6, 0, 2, 6, 0, 2]


# -- properties -------------------------------------------------------------------------------

quantities = st.decimals(min_value=D("0.000001"), max_value=D(10_000), places=6)
prices = st.decimals(min_value=D(-1_000), max_value=D(10_000), places=4)
rates = st.sampled_from([D(0), D(7), D(19), D("5.5"), D(20), D("7.7")])
line = st.tuples(quantities, prices, rates)


@settings(max_examples=300, deadline=None)
@given(st.lists(line, min_size=1, max_size=20), st.sampled_from([0, 2, 3]))
def test_total_gross_is_the_rounded_sum_and_groups_add_up(lines, places):
    """Σ items gross (rounded once) = total gross = Σ group gross; net + VAT = gross per group."""
    result = totals(lines, places)
    exact = sum(q * p for q, p, _ in lines)
    assert result.gross == round_half_up(exact, places)
    assert sum(g.gross for g in result.groups) == result.gross
    assert sum(g.net for g in result.groups) == result.net
    for group in result.groups:
        assert group.net + group.vat == group.gross
        assert group.net == round_half_up(group.gross / (1 + group.vat_percent / 100), places)


@settings(max_examples=200, deadline=None)
@given(st.lists(line, min_size=1, max_size=20), st.randoms(use_true_random=False))
def test_totals_never_depend_on_item_order(lines, rnd: random.Random):
    shuffled = list(lines)
    rnd.shuffle(shuffled)
    assert totals(lines, 2) == totals(shuffled, 2)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.decimals(min_value=D(-1000), max_value=D(1000), places=5), min_size=1, max_size=30)
)
def test_allocate_always_sums_exactly(parts):
    total = round_half_up(sum(parts, D(0)), 2)
    allocated = allocate(total, parts, 2)
    assert sum(allocated, D(0)) == total
    assert all(abs(a - p) < D("0.01") for a, p in zip(allocated, parts, strict=True))


EU_VAT_RATES = ["0", "2.1", "3", "4", "5", "5.5", "6", "7", "8", "8.5", "9", "9.5", "10", "12",
                "13", "13.5", "14", "15", "16", "17", "18", "19", "20", "21", "22", "23", "24",
                "25", "25.5", "27"]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("2E+1"), "20"),
        (D("20").normalize(), "20"),
        (D("1E+3"), "1000"),
        (D("1.50"), "1.50"),
        (D("-0.00"), "0.00"),
        (D("-0"), "0"),
        (D("1E-7"), "0.0000001"),
        (D("-12.5E+2"), "-1250"),
        (D("0.000001"), "0.000001"),
    ],
)
def test_plain_writes_positional_notation_with_the_digits_held(value: D, text: str):
    assert plain(value) == text


@pytest.mark.parametrize("rate", EU_VAT_RATES)
def test_every_eu_vat_rate_is_written_plainly_in_json(rate: str):
    """VAT groups are keyed by normalize(), which writes 20 as 2E+1: JSON must say 20."""
    group = totals([(D(1), D("12.00"), D(rate))], 2).groups[0]
    written = jsoncodec.dumps([group.vat_percent, group.net])
    assert b"e" not in written.lower()
    assert jsoncodec.loads(written)[0] == D(rate)


@pytest.mark.parametrize(
    ("amount", "places", "minor"), [(D("12.34"), 2, 1234), (D("-4.0"), 2, -400), (D(7), 0, 7)]
)
def test_to_minor_is_exact(amount: D, places: int, minor: int):
    assert to_minor(amount, places) == minor


def test_to_minor_refuses_what_is_finer_than_the_minor_unit():
    """0.005 EUR is not 0 cents (int() would truncate it)."""
    with pytest.raises(ValueError, match="finer"):
        to_minor(D("0.005"), 2)
