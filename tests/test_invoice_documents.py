"""Invoice and credit-note documents (pure): properties over random bills, checked by
hypothesis — lines add up to their VAT groups, and credit notes never exceed the invoice but
add up to it exactly once it is fully credited."""

from __future__ import annotations

import contextlib
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.invoicing.documents import Credit, CreditRefused, Head, Source, credit_note, invoice
from app.money import apportion, totals

SELLER = {"name": "S", "countryCode": "DE", "vatId": "DE123456789"}
price = st.decimals("-50", "200", places=2).filter(lambda d: d != 0)
quantity = st.decimals("0.000001", "100", places=6)
rate = st.sampled_from([Decimal(0), Decimal(7), Decimal(19)])
line = st.tuples(quantity, price, rate)


def source(n: int, lines: list[tuple[Decimal, Decimal, Decimal]]) -> Source:
    items = [
        {"description": f"l{i}", "grossUnitPrice": p, "quantity": q, "vatPercent": r,
         "productID": "P", "externalContractId": "K"}
        for i, (q, p, r) in enumerate(lines)
    ]  # fmt: skip
    sums = totals(lines, 2)
    document = {
        "billToAddress": {"countryCode": "DE"},
        "billingEndDate": "2026-11-02",
        "billingStartDate": "2026-11-01",
        "currency": "EUR",
        "dueDate": "2026-11-30",
        "invoiceDate": "2026-11-01",
        "invoiceReference": f"PRE-2026-{n:06d}",
        "items": items,
        "shipToAddress": {"countryCode": "DE"},
        "totalGrossAmount": sums.gross,
        "totalNetAmount": sums.net,
    }
    parameters = {"customerNumber": "C", "externalContractId": "K", "invoice": document,
                  "orderReference": "K", "transactionId": f"t{n}"}  # fmt: skip
    return Source(f"bi_{n}", f"t{n}", f"evt_{n}", parameters)


def build(bills: list[list[tuple[Decimal, Decimal, Decimal]]]) -> dict:
    head = Head("INV-2026-000001", date(2026, 11, 21), SELLER)
    return invoice(head, [source(n, b) for n, b in enumerate(bills)], 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(line, min_size=1, max_size=6), min_size=1, max_size=4))
def test_lines_add_up_to_their_vat_group_and_totals_follow_the_contract(bills):
    document = build(bills)["invoice"]
    for group in document["vatBreakdown"]:
        members = [
            i for i in document["items"] if i["vatPercent"].normalize() == group["vatPercent"]
        ]
        assert sum(i["grossAmount"] for i in members) == group["grossAmount"]
        assert sum(i["netAmount"] for i in members) == group["netAmount"]
    expected = totals([row for b in bills for row in b], 2)
    assert (document["totalGrossAmount"], document["totalNetAmount"]) == (
        expected.gross,
        expected.net,
    )
    preliminary = sum(totals(b, 2).gross for b in bills)
    assert document["roundingDifference"]["grossAmount"] == expected.gross - preliminary


@settings(max_examples=200, deadline=None)
@given(
    st.lists(line, min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 5), st.decimals("0.01", "50", places=2)), max_size=4),
)
def test_credit_notes_never_exceed_the_invoice_and_close_it_exactly(lines, partials):
    assume(totals(lines, 2).gross > 0)
    document = build([lines])
    notes: list[dict] = []

    def issue(credits: list[Credit] | None) -> None:
        head = Head(f"CN-2026-{len(notes) + 1:06d}", date(2026, 11, 22), SELLER)
        notes.append(credit_note(head, document, notes, credits, "r", 2))

    for index, amount in partials:
        # Too much, or not reducing what is owed: refused, and nothing issued.
        with contextlib.suppress(CreditRefused):
            issue([Credit(index % len(lines) + 1, amount=amount)])
    gross = document["invoice"]["totalGrossAmount"]
    credited = sum(n["creditNote"]["totalGrossAmount"] for n in notes)
    assert credited <= gross
    if credited == gross:  # fully credited in amount: nothing more can be
        with pytest.raises(CreditRefused):
            issue(None)
        return
    issue(None)  # the rest of every line: the invoice is closed, exactly
    assert sum(n["creditNote"]["totalGrossAmount"] for n in notes) == gross
    net = sum(n["creditNote"]["totalNetAmount"] for n in notes)
    assert net == document["invoice"]["totalNetAmount"]


@pytest.mark.parametrize(
    ("total", "parts", "expected"),
    [
        ("6.71", ["10.0756", "-3.3613"], ["10.07", "-3.36"]),
        ("1.00", ["0.333", "0.333", "0.333"], ["0.34", "0.33", "0.33"]),
        ("0.02", ["0.001"], ["0.02"]),  # a gap larger than the parts: one unit at a time
        ("-0.01", ["0.004", "-0.004"], ["0.00", "-0.01"]),  # floors already add up
    ],
)
def test_apportion(total, parts, expected):
    assert apportion(Decimal(total), [Decimal(p) for p in parts], 2) == [
        Decimal(e) for e in expected
    ]
