"""The billing lifecycle as operations compose, generated: hypothesis drives random sequences
of subscriptions (in advance or arrears, drafts or not, with one-off items, a stub before the
anchor), changes and cancellations (every effective mode and proration), queued changes and
their withdrawal, time passing, one-off charges, finalization, credit notes, rebills and draft
approve / discard / regenerate, against a real hub on SQLite and on PostgreSQL, beside an
independent Decimal model of what the customer owes (tests/lifecycle_model.py).

After every step: no 5xx; nothing left queued past its date; every cycle billed once (the
hub's count is the model's); one-off items once; Σ invoices − Σ credit notes + Σ open and
draft billing information is what the model says; invoice and credit-note numbers gapless;
every document renders (PDF) and its e-invoice passes the EN 16931 Schematron.

BILLHOOK_STATEFUL_EXAMPLES sets how many sequences run per backend (CI: 2,000).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from app import jsoncodec
from app.main import create_app
from app.testing import FrozenClock
from tests.conftest import (
    ADMIN_TOKEN,
    BACKENDS,
    create_schema,
    drop_schema,
    in_schema,
    make_settings,
    postgres_url,
)
from tests.lifecycle_model import Change, Model, Sub
from tests.schematron import fired_rules

EXAMPLES = int(os.environ.get("BILLHOOK_STATEFUL_EXAMPLES", "2000"))
BERLIN = ZoneInfo("Europe/Berlin")
FEES = (Decimal("30.00"), Decimal("50.00"), Decimal("12.34"), Decimal("99.99"))
ADDRESS = {"countryCode": "DE", "postalCode": "10115", "postalPlace": "Berlin"}
SELLER = {"name": "Rentals GmbH", "countryCode": "DE", "vatId": "DE123456789",
          "postalCode": "48155", "postalPlace": "Münster", "street": "Hafenweg 26a"}  # fmt: skip


class World:
    """One hub (its own thread and event loop) for every sequence: each sequence is a tenant
    of its own, so numbering, customers and subscriptions start afresh."""

    def __init__(self, database_url: str, tmp: Path) -> None:
        self.clock = FrozenClock(_moment(date(2026, 1, 5)))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.app = create_app(make_settings(tmp, database_url=database_url), self.clock)
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.call(self.lifespan.__aenter__())
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(self.app),
                                      base_url="http://hub.test")  # fmt: skip
        self.checked: set[tuple[str, str]] = set()
        self.tenants = 0

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

    def request(self, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
        content = None if body is None else jsoncodec.dumps(body)
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        answer: httpx.Response = self.call(
            self.http.request(method, path, content=content, headers=headers)
        )
        assert answer.status_code < 500, (method, path, answer.text)
        return answer

    def run_due(self) -> None:
        """The worker's timed jobs until nothing more is due (cycles and changes in order)."""
        for _ in range(200):
            done = self.call(self.app.state.hub.periodic.run_once())
            if not done.get("subscriptions") and not done.get("subscription-changes"):
                return
        raise AssertionError("timed jobs never settled")

    def close(self) -> None:
        self.call(self.http.aclose())
        self.call(self.lifespan.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def _moment(day: date) -> int:
    """10:00 in Berlin on `day`, as the clock's milliseconds."""
    return int(datetime(day.year, day.month, day.day, 10, tzinfo=BERLIN).timestamp() * 1000)


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, BERLIN).date()


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


class Lifecycle(RuleBasedStateMachine):
    world: World

    @initialize(start=st.dates(date(2023, 1, 1), date(2028, 12, 31)))
    def tenant(self, start: date) -> None:
        """A tenant of its own, from a day of the sequence's (leap years and every month
        length come up): the clock is set to it, so a sequence replays exactly."""
        w = self.world
        w.clock.now = _moment(start)
        # Timed jobs (auto-finalization…) follow this sequence's clock, not an earlier one's:
        # otherwise what a replay of the same sequence finds depends on the ones before it.
        w.call(w.app.state.hub.periodic.all_due())
        w.tenants += 1
        made = w.request(ADMIN_TOKEN, "POST", "/v1/tenants", {"name": f"t{w.tenants}"})
        assert made.status_code == 201, made.text
        self.key = made.json()["api_key"]
        assert self.api("PUT", "/v1/seller", SELLER).status_code == 200
        self.plans = {}
        for fee in FEES:
            model = {"name": f"Plan {fee}", "currency": "EUR", "vatPercent": 19,
                     "interval": "month", "fee": fee}  # fmt: skip
            self.plans[fee] = self.api("POST", "/v1/price-models", model).json()["id"]
        self.model = Model()
        self.model.today = _day(w.clock.now)

    def api(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.world.request(self.key, method, path, body)

    # -- rules ----------------------------------------------------------------------------------

    @precondition(lambda self: len(self.model.subs) < 3)
    @rule(
        fee=st.sampled_from(FEES),
        in_arrears=st.booleans(),
        draft=st.booleans(),
        one_off=st.sampled_from([None, Decimal("9.99")]),
        anchor_days=st.sampled_from([0, 0, 9, 17, 40]),
    )
    def subscribe(
        self, fee: Decimal, in_arrears: bool, draft: bool, one_off: Any, anchor_days: int
    ) -> None:
        today = self.model.today
        anchor = today + timedelta(days=anchor_days)
        body: dict[str, Any] = {
            "customerNumber": "C", "productId": "RENT", "priceModelId": self.plans[fee],
            "contractStart": today.isoformat(), "billingCycleAnchor": anchor.isoformat(),
            "billInArrears": in_arrears, "draft": draft, "billToAddress": ADDRESS,
        }  # fmt: skip
        if one_off is not None:
            body["oneOffLineItems"] = [{"description": "Setup", "quantity": 1,
                                        "grossUnitPrice": one_off, "vatPercent": 19}]  # fmt: skip
        answer = self.api("POST", "/v1/bills", body)
        assert answer.status_code in (201, 202), answer.text
        sub_id = answer.json()["subscription"]["id"]
        self.model.subscribe(Sub(sub_id, fee, anchor, today, in_arrears, one_off, today))

    def _active(self) -> list[Sub]:
        return [s for s in self.model.subs.values() if s.status == "active"]

    @precondition(lambda self: any(s.status == "active" for s in self.model.subs.values()))
    @rule(
        data=st.data(),
        fee=st.sampled_from(FEES),
        effective=st.sampled_from(["now", "period_end", "date"]),
        offset=st.integers(0, 45),
        proration=st.sampled_from(["prorate", "none", "invoice_now"]),
    )
    def change(self, data: Any, fee: Decimal, effective: str, offset: int, proration: str) -> None:
        sub = data.draw(st.sampled_from(self._active()))
        body = {"priceModelId": self.plans[fee], "effective": effective, "proration": proration}
        self._request(sub, "changes", "change", body, effective, offset, fee)

    @precondition(lambda self: any(s.status == "active" for s in self.model.subs.values()))
    @rule(
        data=st.data(),
        effective=st.sampled_from(["now", "period_end", "date"]),
        offset=st.integers(0, 45),
        proration=st.sampled_from(["prorate", "none", "invoice_now"]),
    )
    def cancel(self, data: Any, effective: str, offset: int, proration: str) -> None:
        sub = data.draw(st.sampled_from(self._active()))
        body = {"effective": effective, "proration": proration}
        self._request(sub, "cancel", "cancel", body, effective, offset, None)

    def _request(self, sub: Sub, path: str, kind: str, body: dict[str, Any], effective: str,
                 offset: int, fee: Decimal | None) -> None:  # fmt: skip
        day = self.model.effective_day(sub, effective, offset)
        if effective == "date":
            body["effectiveDate"] = day.isoformat()
        answer = self.api("POST", f"/v1/subscriptions/{sub.id}/{path}", body)
        if kind == "cancel" and any(c.kind == "cancel" for c in sub.queued):
            assert answer.status_code == 409, answer.text  # one cancellation at a time
            return
        assert answer.status_code == 201, answer.text
        made = answer.json()["change"]
        assert made["effectiveDate"] == day.isoformat()
        self.model.queue(sub, Change(made["id"], kind, day, body["proration"], fee))

    @precondition(lambda self: any(s.queued for s in self.model.subs.values()))
    @rule(data=st.data())
    def withdraw(self, data: Any) -> None:
        sub = data.draw(st.sampled_from([s for s in self.model.subs.values() if s.queued]))
        change = data.draw(st.sampled_from(sub.queued))
        path = f"/v1/subscriptions/{sub.id}/changes/{change.id}/cancel"
        assert self.api("POST", path, {}).status_code == 200
        sub.queued.remove(change)

    @rule(days=st.sampled_from([1, 3, 8, 15, 31, 45]))
    def time_passes(self, days: int) -> None:
        w = self.world
        w.clock.now = _moment(self.model.today + timedelta(days=days))
        w.run_due()
        self.model.run_until(_day(w.clock.now))

    @rule(amount=st.sampled_from([Decimal("5.00"), Decimal("19.99")]))
    def charge(self, amount: Decimal) -> None:
        body = {"customerNumber": "C", "currency": "EUR", "billToAddress": ADDRESS, "items": [
            {"productID": "FEE", "description": "Fee", "quantity": 1, "grossUnitPrice": amount,
             "vatPercent": 19}]}  # fmt: skip
        assert self.api("POST", "/v1/charges", body).status_code == 202
        self.model.owed += amount

    @rule(n=st.integers(0, 3))
    def usage(self, n: int) -> None:
        """A finished trip, priced as given (a usage completion)."""
        today = self.model.today.isoformat()
        body = {"transactionId": f"trip-{n}-{today}", "customerNumber": "C", "currency": "EUR",
                "externalContractId": "TRIPS", "billingStartDate": today,
                "billingEndDate": today, "billToAddress": ADDRESS, "items": [
                    {"productID": "TRIP", "description": "Trip", "quantity": 1,
                     "grossUnitPrice": Decimal("3.50"), "vatPercent": 19}]}  # fmt: skip
        answer = self.api("POST", "/v1/usage-completions", body)
        assert answer.status_code in (200, 202), answer.text
        if answer.status_code == 202:  # 200: the same trip again, billed once
            self.model.owed += Decimal("3.50")

    @rule()
    def finalize(self) -> None:
        assert self.api("POST", "/v1/invoices/finalize", {}).status_code in (200, 201)

    def _drafts(self) -> list[dict[str, Any]]:
        """In an order the sequence decides: ids minted for a moment the frozen clock has shown
        before can sort either way, and hypothesis must draw the same item on a replay."""
        found = self.api("GET", "/v1/billing-information?status=draft&limit=500").json()["data"]
        order = list(self.model.subs)

        def key(record: dict[str, Any]) -> tuple[Any, ...]:
            invoice = record["parameters"]["invoice"]
            sub = record.get("subscriptionId")
            return (order.index(sub) if sub in order else -1, invoice["billingStartDate"],
                    invoice["billingEndDate"], record["source"], invoice["totalGrossAmount"],
                    record["transactionId"])  # fmt: skip

        return sorted(found, key=key)

    @rule(data=st.data(), action=st.sampled_from(["approve", "discard", "regenerate"]))
    def draft(self, data: Any, action: str) -> None:
        drafts = self._drafts()
        if not drafts:
            return
        chosen = data.draw(st.sampled_from(drafts))
        path = f"/v1/billing-information/{chosen['transactionId']}/{action}"
        answer = self.api("POST", path, {"reason": "generated"} if action != "approve" else {})
        if action == "regenerate" and chosen["source"] == "subscription_change":
            assert answer.status_code == 409  # a proration is corrected by a credit note
            return
        assert answer.status_code in (200, 201), answer.text
        if action == "discard":
            invoice = chosen["parameters"]["invoice"]
            self.model.taken(chosen["subscriptionId"],
                             date.fromisoformat(invoice["billingStartDate"]),
                             _money(invoice["totalGrossAmount"]))  # fmt: skip

    def _invoices(self) -> list[dict[str, Any]]:
        """By number: gapless per tenant, so the same on a replay of the sequence."""
        found = self.api("GET", "/v1/invoices?limit=500").json()["data"]
        return sorted(found, key=lambda invoice: invoice["number"])

    @rule(data=st.data(), rebill=st.booleans())
    def correct(self, data: Any, rebill: bool) -> None:
        """A credit note of everything that remains of an invoice, or a rebill of it."""
        open_ = [i for i in self._invoices()
                 if _money(i["creditedAmount"]) < _money(i["totalGrossAmount"])]  # fmt: skip
        if not open_:
            return
        number = data.draw(st.sampled_from(open_))["number"]
        remaining = self._remaining_by_transaction(number)
        if rebill:
            body = {"reason": "corrected", "items": [
                {"productID": "FIX", "description": "Corrected", "quantity": 1,
                 "grossUnitPrice": Decimal("7.00"), "vatPercent": 19}]}  # fmt: skip
            answer = self.api("POST", f"/v1/invoices/{number}/rebill", body)
            self.model.owed += Decimal("7.00")
        else:
            answer = self.api("POST", f"/v1/invoices/{number}/credit-notes", {"reason": "r"})
        assert answer.status_code == 201, answer.text
        for tid, amount in remaining.items():
            found = self.api("GET", f"/v1/billing-information/{tid}")
            record = found.json() if found.status_code == 200 else {}
            start = record.get("parameters", {}).get("invoice", {}).get("billingStartDate")
            self.model.taken(record.get("subscriptionId"),
                             date.fromisoformat(start) if start else None, amount)  # fmt: skip

    def _remaining_by_transaction(self, number: str) -> dict[str, Decimal]:
        invoice = self.api("GET", f"/v1/invoices/{number}").json()
        credited: dict[int, Decimal] = {}
        for note_number in invoice["creditNotes"]:
            note = self.api("GET", f"/v1/credit-notes/{note_number}").json()
            for line in note["document"]["creditNote"]["items"]:
                n = line["lineNumber"]
                credited[n] = credited.get(n, Decimal(0)) + _money(line["grossAmount"])
        left: dict[str, Decimal] = {}
        for line in invoice["document"]["invoice"]["items"]:
            rest = _money(line["grossAmount"]) - credited.get(line["lineNumber"], Decimal(0))
            left[line["transactionId"]] = left.get(line["transactionId"], Decimal(0)) + rest
        return left

    def teardown(self) -> None:
        """This tenant's subscriptions end, so later sequences bill only their own."""
        for sub in getattr(self, "model", Model()).subs.values():
            if sub.status == "active":
                body = {"effective": "now", "proration": "none"}
                self.api("POST", f"/v1/subscriptions/{sub.id}/cancel", body)

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def consistent(self) -> None:
        """Everything the docstring promises, read with as few requests as it takes."""
        if not hasattr(self, "model"):
            return
        invoices = self._invoices()
        infos = self.api("GET", "/v1/billing-information?limit=500").json()["data"]
        self._owes_what_the_model_says(invoices, infos)
        self._every_cycle_once_nothing_queued_past_its_date()
        self._one_off_items_once(infos)
        self._numbers_gapless_and_documents_valid(invoices)

    def _owes_what_the_model_says(self, invoices: list[Any], infos: list[Any]) -> None:
        billed = sum((_money(i["totalGrossAmount"]) - _money(i["creditedAmount"])
                      for i in invoices), Decimal(0))  # fmt: skip
        pending = sum((_money(b["parameters"]["invoice"]["totalGrossAmount"]) for b in infos
                       if b["status"] in ("open", "draft")), Decimal(0))  # fmt: skip
        assert billed + pending == self.model.owed, (billed, pending, self.model.owed)

    def _every_cycle_once_nothing_queued_past_its_date(self) -> None:
        today = self.model.today.isoformat()
        for sub in self.model.subs.values():
            found = self.api("GET", f"/v1/subscriptions/{sub.id}").json()
            assert (found["cyclesBilled"], found["status"]) == (sub.cycles, sub.status), sub
            if not sub.queued and sub.status != "active":
                continue
            changes = self.api("GET", f"/v1/subscriptions/{sub.id}/changes?limit=500").json()
            for change in changes["data"]:
                assert not (change["status"] == "queued" and change["effectiveDate"] <= today)
                assert change["status"] != "failed", change

    def _one_off_items_once(self, infos: list[Any]) -> None:
        setups: dict[str, int] = {}
        for info in infos:
            if info["status"] == "superseded":
                continue
            for item in info["parameters"]["invoice"]["items"]:
                if item["description"] == "Setup":
                    setups[info["subscriptionId"]] = setups.get(info["subscriptionId"], 0) + 1
        for sub in self.model.subs.values():
            assert setups.get(sub.id, 0) == (1 if sub.one_off_billed else 0), (sub, setups)

    def _numbers_gapless_and_documents_valid(self, listed: list[Any]) -> None:
        invoices = sorted(i["number"] for i in listed)
        notes: list[str] = []
        for invoice in listed:
            if _money(invoice["creditedAmount"]):
                notes += self.api("GET", f"/v1/invoices/{invoice['number']}").json()["creditNotes"]
        for prefix, numbers in (("INV", invoices), ("CN", notes)):
            for year in {n.split("-")[1] for n in numbers}:
                mine = sorted(n for n in numbers if n.split("-")[1] == year)
                assert mine == [f"{prefix}-{year}-{k:06d}" for k in range(1, len(mine) + 1)]
        paths = [f"/v1/invoices/{n}" for n in invoices] + [f"/v1/credit-notes/{n}" for n in notes]
        for path in paths:
            if (self.key, path) in self.world.checked:
                continue
            xml = self.api("GET", f"{path}/e-invoice")
            assert xml.status_code == 200, xml.text
            assert fired_rules(xml.content) == [], path
            assert self.api("GET", f"{path}/pdf").status_code == 200, path
            self.world.checked.add((self.key, path))


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        found = World(f"sqlite:///{tmp_path}/lifecycle.db", tmp_path)
        yield found
        found.close()
        return
    base = postgres_url()
    if base is None:
        pytest.skip("PostgreSQL tests run when BILLHOOK_TEST_POSTGRES_URL is set")
    schema = asyncio.run(create_schema(base))
    found = World(in_schema(base, schema), tmp_path)
    try:
        yield found
    finally:
        found.close()
        asyncio.run(drop_schema(base, schema))


def test_the_lifecycle_composes(world: World) -> None:
    Lifecycle.world = world
    Lifecycle.TestCase.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    Lifecycle.TestCase().runTest()
