"""Console sessions end on the server: a cookie copied before Sign out, or kept after its API
key was revoked, after the admin token changed or after its console link expired, opens
nothing. Sign-in is throttled per client and per key prefix (429 with Retry-After), and the
sign-in form's CSRF token is one the hub issued, never one the client chose."""

from __future__ import annotations

import httpx

from app.access import SIGN_IN_FAILURES, SIGN_IN_WINDOW_S
from app.console.session import COOKIE, PRE_COOKIE
from app.testing import FrozenClock
from tests.conftest import ADMIN_TOKEN, API_KEY, START_MS, HubClient
from tests.console import ConsoleBrowser

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


async def reveal(browser: ConsoleBrowser, endpoint_id: str) -> httpx.Response:
    return await browser.post(f"/console/endpoints/{endpoint_id}/secret")


def copy_of(browser: ConsoleBrowser) -> ConsoleBrowser:
    """Another browser holding the same session cookie (and the page's CSRF token)."""
    thief = ConsoleBrowser(browser.http._transport.app)  # type: ignore[attr-defined]
    thief.http.cookies.set(COOKIE, browser.http.cookies[COOKIE], path="/console")
    thief.csrf = browser.csrf
    return thief


async def test_a_cookie_copied_before_sign_out_reveals_nothing_after(hub: HubClient):
    """A copy of the cookie still revealed a whsec_ secret for 8 h after Sign out."""
    endpoint = await hub.endpoint("http://127.0.0.1:9/x")
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        await browser.get(f"/console/endpoints/{endpoint['id']}")
        async with copy_of(browser) as thief:
            assert endpoint["secret"] in (await reveal(thief, endpoint["id"])).text
            assert (await browser.post("/console/sign-out")).status_code == 303
            after = await reveal(thief, endpoint["id"])
            assert after.status_code == 303 and after.headers["location"] == "/console/sign-in"
            assert endpoint["secret"] not in after.text
            assert (await thief.get("/console/")).status_code == 303


async def test_revoking_a_key_ends_every_session_signed_in_with_it(hub: HubClient):
    tenant = (await hub.http.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)).json()
    second = (await hub.http.post(f"/v1/tenants/{tenant['id']}/keys", headers=ADMIN)).json()
    async with ConsoleBrowser(hub.app) as first, ConsoleBrowser(hub.app) as other:
        await first.sign_in(tenant["api_key"])
        await other.sign_in(second["api_key"])
        assert (await first.get("/console/")).status_code == 200
        revoked = await hub.http.delete(
            f"/v1/tenants/{tenant['id']}/keys/{tenant['key_id']}", headers=ADMIN
        )
        assert revoked.status_code == 204
        assert (await first.get("/console/")).status_code == 303
        assert (await other.get("/console/")).status_code == 200  # another key's session


async def test_an_admin_session_ends_when_the_admin_token_changes(hub_factory):
    first = await hub_factory()
    async with ConsoleBrowser(first.app) as browser:
        await browser.sign_in(ADMIN_TOKEN)
        assert (await browser.get("/console/admin")).status_code == 200
        cookie = browser.http.cookies[COOKIE]
    changed = await hub_factory(admin_token="a-different-admin-token-now")
    async with ConsoleBrowser(changed.app) as browser:
        browser.http.cookies.set(COOKIE, cookie, path="/console")
        assert (await browser.get("/console/admin")).status_code == 303


async def test_a_console_link_session_ends_with_the_link(hub_factory):
    clock = FrozenClock(START_MS)
    hub = await hub_factory(clock=clock)
    link = (await hub.http.post("/v1/console-links", json={"expires_in_s": 120})).json()
    async with ConsoleBrowser(hub.app) as browser:
        assert (await browser.use_link(link["url"])).status_code == 303
        clock.advance(100)
        assert (await browser.get("/console/")).status_code == 200
        clock.advance(21)
        assert (await browser.get("/console/")).status_code == 303


def from_client(hub: HubClient, host: str) -> ConsoleBrowser:
    browser = ConsoleBrowser(hub.app)
    browser.http._transport = httpx.ASGITransport(hub.app, client=(host, 40000))
    return browser


async def test_sign_in_is_throttled_per_client_with_retry_after(hub_factory):
    clock = FrozenClock(START_MS)
    hub = await hub_factory(clock=clock)
    async with from_client(hub, "203.0.113.7") as guesser, from_client(hub, "198.51.100.1") as ok:
        await guesser.get("/console/sign-in")
        for n in range(SIGN_IN_FAILURES):
            wrong = await guesser.post("/console/sign-in", {"key": f"guess-{n:04d}-xxxxxxxxxxxx"})
            assert wrong.status_code == 401
        refused = await guesser.post("/console/sign-in", {"key": API_KEY})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert (await ok.sign_in(API_KEY)).status_code == 303  # another client is not held
        clock.advance(SIGN_IN_WINDOW_S)
        assert (await guesser.post("/console/sign-in", {"key": API_KEY})).status_code == 303


async def test_sign_in_is_throttled_per_key_prefix_across_clients(hub: HubClient):
    for n in range(SIGN_IN_FAILURES):
        async with from_client(hub, f"192.0.2.{n}") as browser:
            await browser.get("/console/sign-in")
            answer = await browser.post("/console/sign-in", {"key": f"bh_test_guess_{n}"})
            assert answer.status_code == 401
    async with from_client(hub, "192.0.2.200") as browser:
        await browser.get("/console/sign-in")
        same_prefix = await browser.post("/console/sign-in", {"key": "bh_test_guess_x"})
        assert same_prefix.status_code == 429
        other_prefix = await browser.post("/console/sign-in", {"key": "zz_other"})
        assert other_prefix.status_code == 401


async def test_the_sign_in_token_is_issued_by_the_hub_not_chosen_by_the_client(hub: HubClient):
    """The form's token used to be whatever the pre-cookie said: a page that could set that
    cookie could sign a browser in under its own key."""
    async with ConsoleBrowser(hub.app) as browser:
        browser.http.cookies.set(PRE_COOKIE, "chosen-by-the-client", path="/console")
        chosen = await browser.post(
            "/console/sign-in", {"key": API_KEY, "csrf": "chosen-by-the-client"}
        )
        assert chosen.status_code == 403
        assert (await browser.get("/console/")).status_code == 303
        assert (await browser.sign_in(API_KEY)).status_code == 303  # an issued one works
