"""The console in a real browser: Playwright for Python driving Debian's chromium (no browser
download), against a hub served by real uvicorn on 127.0.0.1 with its worker running, and a real
receiver it delivers to. Nothing here leaves the machine.

Without chromium these tests skip, saying so; in CI (BILLHOOK_TEST_BROWSER=required, set by
.ci/run) a skipped browser test fails the run (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import jsoncodec
from app.main import create_app
from app.testing import Receiver
from subscribers.receiver import WebhookReceiver
from tests.conftest import ADMIN_TOKEN, API_KEY, make_settings
from tests.test_billing import completion
from tests.waiting import until

CHROMIUM = os.environ.get("BILLHOOK_TEST_CHROMIUM") or shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip
SCREENSHOTS = os.environ.get("BILLHOOK_SCREENSHOTS")  # a directory: `make screenshots`
WAIT_MS = 20_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium here: install Debian's package (apt-get install chromium) or set "
        "BILLHOOK_TEST_CHROMIUM to a Chromium binary",
    ),
]


@dataclass
class Live:
    """The hub on a real port, an API client for setting the scene, and the browser."""

    url: str
    api: httpx.AsyncClient
    browser: Any
    requested: list[str]  # every URL the pages asked for

    async def page(self) -> Any:
        """A fresh browser context (its own cookies): one person at one screen."""
        context = await self.browser.new_context(viewport={"width": 1280, "height": 900})
        context.on("request", lambda request: self.requested.append(request.url))
        return await context.new_page()

    async def sign_in(self, key: str) -> Any:
        page = await self.page()
        await page.goto(f"{self.url}/console/sign-in")
        await page.get_by_label("API key or admin token").fill(key)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(f"{self.url}/console/")
        return page


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    from playwright.async_api import async_playwright

    # Retries (and the first probe of a failing endpoint) a minute apart: nothing but the test's
    # own actions moves a delivery while it looks.
    settings = make_settings(
        tmp_path, run_worker=True, retry_schedule="60s,60s", connect_timeout=0.5
    )
    app = create_app(settings)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        server = await stack.enter_async_context(Receiver(app))
        api = await stack.enter_async_context(httpx.AsyncClient(
            base_url=server.url, headers={"authorization": f"Bearer {API_KEY}"}))  # fmt: skip
        playwright = await stack.enter_async_context(async_playwright())
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        stack.push_async_callback(browser.close)
        live = Live(server.url, api, browser, [])
        yield live
        outside = [u for u in live.requested if not u.startswith("http://127.0.0.1:")]
        assert live.requested and not outside, f"requests left the machine: {outside}"


async def reloaduntil(page: Any, selector: str, text: str) -> None:
    """Reload the page until `selector` shows `text`, as a person pressing F5 would."""

    async def shown() -> bool:
        await page.reload()
        return text in (await page.locator(selector).first.inner_text())

    await until(shown)


async def bill(live: Live, **changes: Any) -> str:
    answer = await live.api.post("/v1/usage-completions", content=jsoncodec.dumps(
        completion(**changes)), headers={"content-type": "application/json"})  # fmt: skip
    assert answer.status_code == 202, answer.text
    event_id: str = answer.json()["event_id"]
    return event_id


async def test_register_deliver_survive_an_outage_replay_and_invoice(live: Live):
    """The newcomer's path: sign in with the key, register an endpoint, see a delivery arrive;
    the receiver goes down, the endpoint turns failing; it comes back, a replay from the console
    reaches 100 %; billing information is finalized and its e-invoice downloaded."""
    inbox = WebhookReceiver()
    async with Receiver(inbox.app, "/webhooks") as receiver:
        page = await live.sign_in(API_KEY)
        await page.get_by_role("link", name="Endpoints").click()
        await page.get_by_role("link", name="Register an endpoint").click()
        await page.get_by_label("URL (a webhook").fill(receiver.url)
        await page.get_by_label("Description").fill("billing receiver")
        await page.get_by_role("button", name="Register").click()
        await page.get_by_text("Endpoint registered.").wait_for()
        endpoint_url = page.url.split("?")[0]
        await page.get_by_role("button", name="Reveal secret").click()
        inbox.set_secret((await page.locator("#secret").inner_text()).strip())

        first = await bill(live, transactionId="t-1")
        await until(lambda: _count(inbox, 1))
        await page.goto(f"{live.url}/console/events/{first}")
        await reloaduntil(page, "main section h3", "succeeded")
        # the delivery names its endpoint by its description, as every page does
        assert "billing receiver" in await page.locator("main section h3").first.inner_text()
        port = receiver.port

    missed = [await bill(live, transactionId=f"t-{n}") for n in range(2, 7)]  # 5 failures
    await page.goto(endpoint_url)
    await reloaduntil(page, "main > p .badge", "failing")

    async with Receiver(inbox.app, "/webhooks", port=port):
        await page.get_by_role("link", name="Replay…").click()
        await page.get_by_label("From (UTC)").fill("2020-01-01T00:00")
        await page.get_by_role("button", name="Count what it would send").click()
        assert await page.locator("#matched strong").first.inner_text() == "5"
        await page.get_by_role("button", name="Start the replay").click()
        await page.locator("#percent").get_by_text("100 %").wait_for(timeout=WAIT_MS)
        await until(lambda: _count(inbox, 6))
        assert set(missed) <= inbox.inbox.ids()  # webhook-id is the event id

    await page.goto(endpoint_url)
    await reloaduntil(page, "main > p .badge", "active")
    if SCREENSHOTS:
        await page.goto(f"{live.url}/console/")
        await page.screenshot(path=str(Path(SCREENSHOTS) / "console.png"), full_page=False)

    seller = {"name": "Rides GmbH", "vatId": "DE123456789", "countryCode": "DE"}
    assert (await live.api.put("/v1/seller", json=seller)).status_code == 200
    await page.get_by_role("link", name="Billing", exact=True).click()
    await page.get_by_label("Customer number").fill("C-1")
    await page.get_by_role("button", name="Show").click()
    await page.get_by_role("button", name="Finalize what is open for C-1").click()
    await page.get_by_role("heading", name="VAT breakdown").wait_for()
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download the e-invoice (XML)").click()
    download = await download_info.value
    xml = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert xml.startswith(b"<?xml") and b"CrossIndustryInvoice" in xml
    assert download.suggested_filename.endswith(".xml")


async def test_a_console_link_opens_a_viewer_session_that_changes_nothing(live: Live):
    endpoint = (await live.api.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/x"})).json()
    link = (await live.api.post("/v1/console-links", json={"role": "viewer"})).json()
    page = await live.page()
    await page.goto(link["url"])
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url(f"{live.url}/console/")
    assert "viewer" in await page.locator("header").inner_text()
    await page.goto(f"{live.url}/console/endpoints/{endpoint['id']}")
    for button in ("Send a test event", "Reveal secret", "Rotate secret", "Disable"):
        assert await page.get_by_role("button", name=button).count() == 0
    assert await page.get_by_role("link", name="Register an endpoint").count() == 0
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    forged = await page.request.post(
        f"{live.url}/console/endpoints/{endpoint['id']}/status",
        form={"csrf": csrf, "status": "disabled"},
    )
    assert forged.status == 403
    assert (await live.api.get(f"/v1/endpoints/{endpoint['id']}")).json()["status"] == "active"
    again = await live.page()
    await again.goto(link["url"])
    await again.get_by_role("button", name="Continue").click()
    assert "unknown, used or expired" in await again.locator("main").inner_text()


async def test_tenant_a_cannot_open_tenant_b_pages_by_url(live: Live):
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    bee = (await live.api.post("/v1/tenants", json={"name": "bee"}, headers=admin)).json()
    bee_auth = {"authorization": f"Bearer {bee['api_key']}"}
    theirs = (await live.api.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/bee"},
                                  headers=bee_auth)).json()  # fmt: skip
    page = await live.sign_in(API_KEY)
    answer = await page.goto(f"{live.url}/console/endpoints/{theirs['id']}")
    assert answer.status == 404
    assert "127.0.0.1:9/bee" not in await page.content()
    await page.goto(f"{live.url}/console/endpoints")
    assert theirs["id"] not in await page.content()
    bee_page = await live.sign_in(bee["api_key"])
    assert (await bee_page.goto(f"{live.url}/console/endpoints/{theirs['id']}")).status == 200


async def _count(inbox: WebhookReceiver, wanted: int) -> bool:
    return inbox.inbox.count() >= wanted


PAGES = ["/console/", "/console/endpoints", "/console/endpoints/new", "/console/events",
         "/console/replays", "/console/billing", "/console/invoices",
         "/console/settings"]  # fmt: skip
# Inputs that a sighted user and a screen reader both can name: a visible control without an
# accessible name (no label, no aria-label) is what this finds.
UNNAMED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) &&
               !e.getAttribute('aria-label') && !(e.tagName === 'BUTTON' && e.innerText.trim()))
  .map(e => e.outerHTML)"""


async def _every_page(live: Live) -> tuple[list[str], list[str]]:
    """A scene with one of everything; every page a tenant sees, and every page the admin
    sees, with the ids in their paths."""
    endpoint = (await live.api.post("/v1/endpoints", json={
        "url": "http://127.0.0.1:9/a-rather-long-path/that/goes/on/and-on?with=a&query=too",
        "description": "the merchant's billing system, which has a long name"})).json()  # fmt: skip
    event_id = await bill(live, transactionId="t-phone-width-with-a-long-transaction-id")
    seller = {"name": "Rides GmbH", "vatId": "DE123456789", "countryCode": "DE"}
    assert (await live.api.put("/v1/seller", json=seller)).status_code == 200
    made = (await live.api.post("/v1/invoices/finalize", json={})).json()["invoices"]
    credit = {"reason": "the trip was cancelled"}
    answer = await live.api.post(f"/v1/invoices/{made[0]['number']}/credit-notes", json=credit)
    assert answer.status_code == 201, answer.text
    replay = {"endpoint_id": endpoint["id"], "since": "2020-01-01", "status": "all"}
    replay_id = (await live.api.post("/v1/replays", json=replay)).json()["id"]
    tenants = (await live.api.get("/v1/tenants", headers=ADMIN)).json()["data"]
    tenant_pages = [*PAGES, f"/console/endpoints/{endpoint['id']}",
                    f"/console/endpoints/{endpoint['id']}/edit", f"/console/events/{event_id}",
                    f"/console/replays/{replay_id}", f"/console/invoices/{made[0]['number']}",
                    "/console/dead-letters"]  # fmt: skip
    return tenant_pages, ["/console/admin", f"/console/admin/tenants/{tenants[0]['id']}"]


ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
# `word-break: break-all` splits ordinary words ("web|hook") at any letter; long ids and URLs
# wrap with `overflow-wrap: anywhere` instead, only where they must.
BROKEN_WORDS = """() => [...document.querySelectorAll('main *')]
  .filter(e => getComputedStyle(e).wordBreak === 'break-all').map(e => e.tagName)"""
# The outermost elements that reach past the screen's right edge (what to fix).
WIDE = """() => [...document.querySelectorAll('main *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
               && !(e.parentElement.getBoundingClientRect().right
                    > document.documentElement.clientWidth + 1))
  .slice(0, 3).map(e => e.outerHTML.slice(0, 160))"""


# RFC 3339 as the API writes it ("2026-11-17T09:00:00.000Z"), outside payloads shown as sent.
RAW_TIMES = r"""() => [...document.querySelectorAll('main *:not(pre)')]
  .filter(e => [...e.childNodes].some(n => n.nodeType === 3 &&
               /\d{4}-\d\d-\d\dT\d\d:\d\d/.test(n.textContent)))
  .map(e => e.outerHTML.slice(0, 160))"""


async def test_every_page_fits_a_phone_and_names_its_controls(live: Live):
    """At 390 px (a phone) no page scrolls sideways — the endpoint page was 413 px — every
    control has a name, and no time is shown as a raw RFC 3339 string (a credit note's date
    was)."""
    tenant_pages, admin_pages = await _every_page(live)
    for key, paths in ((API_KEY, tenant_pages), (ADMIN_TOKEN, admin_pages)):
        page = await live.sign_in(key)
        await page.set_viewport_size({"width": 390, "height": 740})
        for path in paths:
            await page.goto(f"{live.url}{path}")
            overflow = await page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            wide = await page.evaluate(WIDE) if overflow > 0 else []
            assert overflow <= 0, f"{path} is {overflow}px wider than a phone: {wide}"
            assert await page.evaluate(UNNAMED) == [], path
            assert await page.evaluate(BROKEN_WORDS) == [], f"{path} breaks words mid-word"
            raw = await page.evaluate(RAW_TIMES)
            assert raw == [], f"{path} shows raw timestamps: {raw}"
    await page.keyboard.press("Tab")  # the first stop is the skip link
    assert await page.evaluate("() => document.activeElement.textContent") == "Skip to content"


async def test_disabling_an_endpoint_asks_once_saying_what_will_happen(live: Live):
    """Disable (like rotating a secret, finalizing every customer, crediting everything) is
    sent only once its box, which says what will happen, is ticked."""
    endpoint = (await live.api.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/x"})).json()
    page = await live.sign_in(API_KEY)
    await page.goto(f"{live.url}/console/endpoints/{endpoint['id']}")
    await page.get_by_role("button", name="Disable").click()  # the browser asks for the box
    assert (await live.api.get(f"/v1/endpoints/{endpoint['id']}")).json()["status"] == "active"
    await page.get_by_label("nothing is sent to this endpoint until it is enabled").check()
    await page.get_by_role("button", name="Disable").click()
    await page.get_by_text("disabled").first.wait_for()
    assert (await live.api.get(f"/v1/endpoints/{endpoint['id']}")).json()["status"] == "disabled"


async def _unavailable(scope: Any, receive: Any, send: Any) -> None:
    """A receiver that answers every delivery 503."""
    await receive()
    await send({"type": "http.response.start", "status": 503, "headers": []})
    await send({"type": "http.response.body", "body": b"down for maintenance"})


async def test_the_console_says_why_and_names_endpoints_by_description(live: Live):
    """Three endpoints share a URL: every page tells them apart by description; the lists say
    what each answered last and when it is tried next; the events list shows how each event
    fared and finds one by id; the replay form offers the catalog's types (a declared one
    included) before any was published; the replays list names its endpoint."""
    async with Receiver(_unavailable, "/hook") as down:
        names = ["north depot", "south depot", "east depot"]
        ids = {}
        for name in names:
            created = await live.api.post(
                "/v1/endpoints", json={"url": down.url, "description": name}
            )
            ids[name] = created.json()["id"]
        await live.api.post("/v1/event-types", json={"name": "rental.returned"})
        page = await live.sign_in(API_KEY)
        await page.goto(f"{live.url}/console/replays")
        options = await page.locator("#endpoint_id option").all_inner_texts()
        assert sorted(o.split(" — ")[0] for o in options) == sorted(names)
        types = await page.locator("input[name=event_types]").evaluate_all(
            "boxes => boxes.map(b => b.value)"
        )
        assert {"subscriptions/billingInformationAvailable", "rental.returned"} <= set(types)
        event_id = await bill(live, transactionId="t-why")
        await page.goto(f"{live.url}/console/endpoints")
        await reloaduntil(page, "main tbody", "retry in")
        for row in await page.locator("main tbody tr").all_inner_texts():
            assert "503 Service Unavailable" in row and "retry in " in row, row
            assert "just now" in row or "ago" in row, row  # when it answered
            assert any(name in row for name in names), row
        await page.goto(f"{live.url}/console/")
        overview = await page.locator("main table").inner_text()
        assert overview.count("503") == 3 and "south depot" in overview
        await bill(live, transactionId="t-other")
        await page.goto(f"{live.url}/console/events")
        await page.get_by_label("Event id").fill(event_id)
        await page.get_by_role("button", name="Search").click()
        [row] = await page.locator("main tbody tr").all_inner_texts()
        assert event_id in row and "pending ×3" in row, row
        replay = {"endpoint_id": ids["south depot"], "since": "2020-01-01", "status": "all"}
        assert (await live.api.post("/v1/replays", json=replay)).status_code == 202
        await page.goto(f"{live.url}/console/replays")
        listed = await page.locator("main tbody").inner_text()
        assert "south depot" in listed and ids["south depot"] not in listed


async def test_the_settings_page_changes_what_the_api_reads_and_publishing_follows(live: Live):
    """The tenant's settings are a console page: ticking free-form types and unticking
    automatic finalization there is what GET /v1/settings then says, and an event type that
    is neither built in nor declared is accepted at once (it was a 422 before)."""
    unknown = {"type": "made.up", "parameters": {"n": 1}}
    assert (await live.api.post("/v1/events", json=unknown)).status_code == 422
    page = await live.sign_in(API_KEY)
    await page.get_by_role("link", name="Settings").click()
    await page.get_by_label("Accept event types that are neither built in nor declared").check()
    await page.get_by_label("Finalize open billing information automatically").uncheck()
    await page.get_by_role("button", name="Save settings").click()
    await page.get_by_text("Settings saved.").wait_for()
    assert await page.get_by_label("Accept event types that are neither").is_checked()
    saved = (await live.api.get("/v1/settings")).json()
    assert (saved["freeFormEventTypes"], saved["autoFinalize"]) == (True, False)
    assert saved["autoFinalizeDrafts"] is False  # left as it was
    assert (await live.api.post("/v1/events", json=unknown)).status_code == 202
