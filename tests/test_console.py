"""The console over HTTP, as a browser without JavaScript uses it: sign-in (key, link, admin),
sessions (HttpOnly, SameSite=Strict, expiring), CSRF on every form, roles, tenant isolation on
every page, and each page's forms doing what the API does. The real browser runs in
tests/test_console_browser.py."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from app import jsoncodec
from app.access import SESSION_S
from app.console.render import _percent, _rate, _when
from app.console.session import COOKIE
from app.testing import FrozenClock
from tests.backends import rows
from tests.conftest import ADMIN_TOKEN, API_KEY, START_MS, HubClient
from tests.console import ConsoleBrowser
from tests.test_billing import completion, post
from tests.test_invoices import seller

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Other:
    """Tenant B and one of each of its things, for A's session to try to reach."""

    key: str
    tenant_id: str
    endpoint_id: str
    event_id: str
    delivery_id: str
    invoice: str
    replay_id: str


async def make_other(hub: HubClient) -> Other:
    created = (await hub.http.post("/v1/tenants", json={"name": "bee"}, headers=ADMIN)).json()
    auth = {"authorization": f"Bearer {created['api_key']}"}
    await hub.http.put(
        "/v1/seller",
        json={"name": "Bee GmbH", "vatId": "DE123456789", "countryCode": "DE"},
        headers=auth,
    )
    endpoint = (
        await hub.http.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/b"}, headers=auth)
    ).json()
    billed = await post(
        hub, "/v1/usage-completions", completion(customerNumber="B-1"), headers=auth
    )
    assert billed.status_code == 202, billed.text
    event_id = billed.json()["event_id"]
    delivery_id = (await hub.http.get(f"/v1/events/{event_id}", headers=auth)).json()["deliveries"][
        0
    ]["id"]
    invoice = (await hub.http.post("/v1/invoices/finalize", json={}, headers=auth)).json()
    replay = await hub.http.post(
        "/v1/replays",
        headers=auth,
        json={"endpoint_id": endpoint["id"], "since": "2020-01-01", "status": "all"},
    )
    assert replay.status_code == 202, replay.text
    return Other(
        created["api_key"],
        created["id"],
        endpoint["id"],
        event_id,
        delivery_id,
        invoice["invoices"][0]["number"],
        replay.json()["id"],
    )


def pages_of(o: Other) -> list[str]:
    return [
        f"/console/endpoints/{o.endpoint_id}",
        f"/console/endpoints/{o.endpoint_id}/edit",
        f"/console/events/{o.event_id}",
        f"/console/replays/{o.replay_id}",
        f"/console/invoices/{o.invoice}",
        f"/console/invoices/{o.invoice}/e-invoice.xml",
    ]


def forms_of(o: Other) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"/console/endpoints/{o.endpoint_id}", {"url": "http://127.0.0.1:9/x", "types": "all"}),
        (f"/console/endpoints/{o.endpoint_id}/secret", {}),
        (f"/console/endpoints/{o.endpoint_id}/rotate", {}),
        (f"/console/endpoints/{o.endpoint_id}/test", {}),
        (f"/console/endpoints/{o.endpoint_id}/status", {"status": "disabled"}),
        (f"/console/events/{o.event_id}/resend", {}),
        ("/console/replays/preview", {"endpoint_id": o.endpoint_id, "since": "2020-01-01"}),
        ("/console/replays", {"endpoint_id": o.endpoint_id, "since": "2020-01-01"}),
        (f"/console/replays/{o.replay_id}/cancel", {}),
        (f"/console/invoices/{o.invoice}/credit-notes", {"scope": "all", "reason": "x"}),
    ]


TENANT_PAGES = [
    "/console/",
    "/console/endpoints",
    "/console/endpoints/new",
    "/console/events",
    "/console/replays",
    "/console/billing",
    "/console/invoices",
    "/console/settings",
]


async def state_of(hub: HubClient) -> list[Any]:
    """Everything a console form could change, read outside the hub."""
    url = hub.hub.settings.database_url
    found = []
    for sql in (
        "SELECT id, url, status, secret FROM endpoints ORDER BY id",
        "SELECT id, status FROM deliveries ORDER BY id",
        "SELECT id, status FROM replays ORDER BY id",
        "SELECT number FROM credit_notes ORDER BY number",
        "SELECT number FROM invoices ORDER BY number",
        "SELECT id, revoked_at FROM api_keys ORDER BY id",
        "SELECT id, auto_finalize, auto_finalize_drafts, free_form_types FROM tenants ORDER BY id",
    ):
        found.append(await rows(url, sql))
    return found


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


# -- sign-in and sessions ------------------------------------------------------------------------


async def test_a_key_becomes_a_strict_httponly_session_that_does_not_hold_the_key(hub):
    async with ConsoleBrowser(hub.app) as browser:
        answer = await browser.sign_in(API_KEY)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE))
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "samesite", "path"} <= attributes
        assert "samesite=strict" in cookie.lower() and "path=/console" in cookie.lower()
        assert API_KEY not in cookie and API_KEY.split("_")[-1] not in cookie
        overview = await browser.get("/console/")
        assert overview.status_code == 200 and "Overview" in overview.text


async def test_every_page_carries_the_security_headers_and_no_inline_script(hub):
    async with ConsoleBrowser(hub.app) as browser:
        pages = [await browser.get("/console/sign-in")]
        await browser.sign_in(API_KEY)
        pages += [await browser.get(path) for path in TENANT_PAGES]
        for answer in pages:
            path = answer.url.path
            assert answer.status_code == 200, path
            policy = answer.headers["content-security-policy"]
            assert "default-src 'self'" in policy and "script-src 'self'" in policy
            assert "unsafe-inline" not in policy
            assert "<script" not in answer.text and " style=" not in answer.text, path
            assert re.search(r'(src|href)="https?://', answer.text) is None, path


async def test_a_wrong_key_or_a_forged_form_signs_nobody_in(hub):
    async with ConsoleBrowser(hub.app) as browser:
        await browser.get("/console/sign-in")
        wrong = await browser.post("/console/sign-in", {"key": "bh_not_a_key_at_all_000"})
        assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
        forged = await browser.post("/console/sign-in", {"key": API_KEY, "csrf": "forged"})
        assert forged.status_code == 403
        assert (await browser.get("/console/")).status_code == 303  # still signed out


async def test_pages_need_a_session_and_sign_out_ends_it(hub):
    async with ConsoleBrowser(hub.app) as browser:
        for path in TENANT_PAGES:
            answer = await browser.get(path)
            assert (answer.status_code, answer.headers["location"]) == (303, "/console/sign-in")
        await browser.sign_in(API_KEY)
        assert (await browser.get("/console/")).status_code == 200
        out = await browser.post("/console/sign-out")
        assert out.status_code == 303
        assert (await browser.get("/console/")).status_code == 303


async def test_a_session_expires(hub_factory):
    clock = FrozenClock(START_MS)
    hub = await hub_factory(clock=clock)
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        clock.advance(SESSION_S - 1)
        assert (await browser.get("/console/")).status_code == 200
        clock.advance(2)
        assert (await browser.get("/console/")).status_code == 303


async def test_a_revoked_key_cannot_sign_in(hub):
    tenant = (await hub.http.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)).json()
    await hub.http.delete(f"/v1/tenants/{tenant['id']}/keys/{tenant['key_id']}", headers=ADMIN)
    async with ConsoleBrowser(hub.app) as browser:
        assert (await browser.sign_in(tenant["api_key"])).status_code == 401


# -- console links -------------------------------------------------------------------------------


async def test_a_console_link_signs_in_once_in_its_role_and_opening_it_spends_nothing(hub):
    minted = await hub.http.post("/v1/console-links", json={"role": "viewer"})
    assert minted.status_code == 201, minted.text
    link = minted.json()
    assert (link["role"], link["tenant_id"]) == ("viewer", "tn_default")
    async with ConsoleBrowser(hub.app) as browser:
        path = link["url"].removeprefix("http://hub.test")
        assert (await browser.get(path)).status_code == 200  # a link preview
        assert (await browser.get(path)).status_code == 200
        used = await browser.use_link(link["url"])
        assert used.status_code == 303
        overview = await browser.get("/console/")
        assert overview.status_code == 200 and "viewer" in overview.text
    async with ConsoleBrowser(hub.app) as again:
        await again.get(path)
        assert (await again.post(path)).status_code == 401


async def test_a_console_link_expires(hub_factory):
    clock = FrozenClock(START_MS)
    hub = await hub_factory(clock=clock)
    link = (await hub.http.post("/v1/console-links", json={"expires_in_s": 60})).json()
    clock.advance(61)
    async with ConsoleBrowser(hub.app) as browser:
        answer = await browser.use_link(link["url"])
        assert answer.status_code == 401 and "expired" in answer.text


async def test_who_may_mint_which_link(hub):
    """A tenant key mints for itself only, never admin; the admin mints for any tenant."""
    other = (await hub.http.post("/v1/tenants", json={"name": "bee"}, headers=ADMIN)).json()
    for body, status in [
        ({"tenant_id": other["id"]}, 403),
        ({"role": "admin"}, 422),
        ({"role": "owner"}, 422),
        ({"expires_in_s": 10}, 422),
        ({"role": "operator"}, 201),
    ]:
        answer = await hub.http.post("/v1/console-links", json=body)
        assert answer.status_code == status, (body, answer.text)
    for body, status in [
        ({"tenant_id": other["id"], "role": "operator"}, 201),
        ({"role": "admin"}, 201),
        ({"role": "viewer"}, 422),  # which tenant?
        ({"tenant_id": "tn_nope"}, 404),
    ]:
        answer = await hub.http.post("/v1/console-links", json=body, headers=ADMIN)
        assert answer.status_code == status, (body, answer.text)
    assert (
        await hub.http.post("/v1/console-links", json={}, headers={"authorization": "Bearer nope"})
    ).status_code == 401


# -- roles and CSRF ------------------------------------------------------------------------------


async def test_a_viewer_sees_but_changes_nothing(hub):
    mine = await hub.endpoint("http://127.0.0.1:9/a")
    link = (await hub.http.post("/v1/console-links", json={"role": "viewer"})).json()
    before = await state_of(hub)
    async with ConsoleBrowser(hub.app) as browser:
        await browser.use_link(link["url"])
        detail = await browser.get(f"/console/endpoints/{mine['id']}")
        assert detail.status_code == 200 and "Send a test event" not in detail.text
        for path, data in [
            ("/console/endpoints", {"url": "http://127.0.0.1:9/new", "types": "all"}),
            (f"/console/endpoints/{mine['id']}/secret", {}),
            (f"/console/endpoints/{mine['id']}/rotate", {}),
            (f"/console/endpoints/{mine['id']}/status", {"status": "disabled"}),
            ("/console/billing/finalize", {}),
            ("/console/settings", {"free_form_types": "on"}),
        ]:
            answer = await browser.post(path, data)
            assert answer.status_code == 403 and "viewer" in answer.text, path
            assert mine["secret"] not in answer.text
    assert await state_of(hub) == before


async def test_a_form_without_its_csrf_token_changes_nothing(hub):
    mine = await hub.endpoint("http://127.0.0.1:9/a")
    before = await state_of(hub)
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        for token in ("", "wrong"):
            for path in (
                "/console/endpoints",
                f"/console/endpoints/{mine['id']}/rotate",
                f"/console/endpoints/{mine['id']}/status",
                "/console/settings",
            ):
                answer = await browser.post(
                    path, {"csrf": token, "url": "http://127.0.0.1:9/b", "status": "disabled",
                           "free_form_types": "on"},
                )  # fmt: skip
                assert answer.status_code == 403, path
    assert await state_of(hub) == before


# -- tenant isolation ----------------------------------------------------------------------------


async def test_tenant_a_cannot_open_or_change_tenant_b_by_url(hub):
    other = await make_other(hub)
    await hub.endpoint("http://127.0.0.1:9/a")
    before = await state_of(hub)
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        for path in pages_of(other):
            answer = await browser.get(path)
            assert answer.status_code == 404, path
            assert other.endpoint_id not in answer.text or "no endpoint" in answer.text
        for path in TENANT_PAGES:
            answer = await browser.get(path)
            for foreign in (other.endpoint_id, other.event_id, other.invoice, other.replay_id):
                assert foreign not in answer.text, (path, foreign)
        searched = await browser.get("/console/events", customer="B-1")
        assert other.event_id not in searched.text
        await browser.get("/console/endpoints/new")
        for path, data in forms_of(other):
            answer = await browser.post(path, data)
            assert answer.status_code == 404, (path, answer.text[-400:])
        assert (await browser.get("/console/admin")).status_code == 403
        assert (
            await browser.post("/console/tenant", {"tenant_id": other.tenant_id})
        ).status_code == 403
        assert other.endpoint_id not in (await browser.get("/console/endpoints")).text
    assert await state_of(hub) == before


async def test_a_tenant_link_for_b_opens_only_b(hub):
    other = await make_other(hub)
    mine = await hub.endpoint("http://127.0.0.1:9/a")
    link = (
        await hub.http.post(
            "/v1/console-links",
            headers=ADMIN,
            json={"tenant_id": other.tenant_id, "role": "viewer"},
        )
    ).json()
    async with ConsoleBrowser(hub.app) as browser:
        await browser.use_link(link["url"])
        assert (await browser.get(f"/console/endpoints/{other.endpoint_id}")).status_code == 200
        assert (await browser.get(f"/console/endpoints/{mine['id']}")).status_code == 404


# -- admin ---------------------------------------------------------------------------------------


async def test_the_admin_sees_tenants_queues_and_manages_keys(hub):
    other = await make_other(hub)
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(ADMIN_TOKEN)
        listed = await browser.get("/console/admin")
        assert listed.status_code == 200 and "bee" in listed.text and "default" in listed.text
        created = await browser.post(f"/console/admin/tenants/{other.tenant_id}/keys")
        assert created.status_code == 201
        new_key = re.search(r'id="api-key">([^<]+)<', created.text).group(1)  # type: ignore[union-attr]
        answer = await hub.http.get("/v1/endpoints", headers={"authorization": f"Bearer {new_key}"})
        assert answer.status_code == 200
        page = await browser.get(f"/console/admin/tenants/{other.tenant_id}")
        assert new_key not in page.text  # shown once
        key_id = re.findall(r"/keys/(key_[^/]+)/revoke", page.text)[0]
        revoked = await browser.post(
            f"/console/admin/tenants/{other.tenant_id}/keys/{key_id}/revoke"
        )
        assert revoked.status_code == 303
        made = await browser.post("/console/admin/tenants", {"name": "cee"})
        assert made.status_code == 201 and re.search(r'id="api-key">bh_', made.text)
        switched = await browser.post("/console/tenant", {"tenant_id": other.tenant_id})
        assert switched.status_code == 303
        assert (await browser.get(f"/console/endpoints/{other.endpoint_id}")).status_code == 200
        refused = await browser.post("/console/tenant", {"tenant_id": "tn_nope"})
        assert refused.status_code == 404
    keys = await rows(
        hub.hub.settings.database_url,
        f"SELECT id, revoked_at FROM api_keys WHERE tenant_id = '{other.tenant_id}'",
    )
    assert len(keys) == 2 and sum(1 for _, revoked in keys if revoked is None) == 1


# -- the pages' forms ----------------------------------------------------------------------------


async def test_an_endpoint_form_refuses_what_the_api_refuses_and_keeps_what_was_typed(hub):
    before = await state_of(hub)
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        await browser.get("/console/endpoints/new")
        for data in [
            {"url": "ftp://example.com/x", "types": "all"},
            {"url": "http://127.0.0.1:9/x", "types": "all", "rate_limit_per_s": "0"},
            {"url": "http://127.0.0.1:9/x", "types": "some", "event_types": "bad type!"},
        ]:
            answer = await browser.post("/console/endpoints", data)
            assert answer.status_code == 422, data
            assert 'class="problem"' in answer.text and data["url"] in answer.text
    assert await state_of(hub) == before


async def test_an_endpoint_is_created_edited_disabled_and_its_secret_revealed_and_rotated(hub):
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        await browser.get("/console/endpoints/new")
        created = await browser.post(
            "/console/endpoints",
            {
                "url": "http://127.0.0.1:9/hook",
                "types": "some",
                "event_types": "subscriptions/billingInformationAvailable",
                "customerNumber": "C-1",
                "ordered": "on",
                "rate_limit_per_s": "5",
            },
        )
        assert created.status_code == 303, created.text
        endpoint_id = created.headers["location"].split("/")[-1].split("?")[0]
        api = (await hub.http.get(f"/v1/endpoints/{endpoint_id}")).json()
        assert api["event_types"] == ["subscriptions/billingInformationAvailable"]
        assert (api["filter"], api["ordered"], api["rate_limit_per_s"]) == (
            {"customerNumber": "C-1"},
            True,
            5,
        )
        await browser.get(f"/console/endpoints/{endpoint_id}/edit")
        edited = await browser.post(
            f"/console/endpoints/{endpoint_id}", {"url": "http://127.0.0.1:9/other", "types": "all"}
        )
        assert edited.status_code == 303
        api = (await hub.http.get(f"/v1/endpoints/{endpoint_id}")).json()
        assert (api["url"], api["event_types"], api["filter"], api["rate_limit_per_s"]) == (
            "http://127.0.0.1:9/other",
            None,
            {},
            None,
        )
        shown = await browser.get(f"/console/endpoints/{endpoint_id}")
        assert shown.text.count('name="confirm" value="yes" required') == 2  # disable, rotate
        unasked = await browser.post(
            f"/console/endpoints/{endpoint_id}/status", {"status": "disabled"}
        )
        assert unasked.status_code == 422 and "confirm" in unasked.text
        assert (await hub.http.get(f"/v1/endpoints/{endpoint_id}")).json()["status"] == "active"
        disabled = await browser.post(
            f"/console/endpoints/{endpoint_id}/status", {"status": "disabled", "confirm": "yes"}
        )
        assert disabled.status_code == 303
        assert (await hub.http.get(f"/v1/endpoints/{endpoint_id}")).json()["status"] == "disabled"
        secret = (await hub.http.get(f"/v1/endpoints/{endpoint_id}/secret")).json()["secret"]
        detail = await browser.get(f"/console/endpoints/{endpoint_id}")
        assert secret not in detail.text  # only on request
        revealed = await browser.post(f"/console/endpoints/{endpoint_id}/secret")
        assert secret in revealed.text
        unasked = await browser.post(f"/console/endpoints/{endpoint_id}/rotate")
        assert unasked.status_code == 422
        same = (await hub.http.get(f"/v1/endpoints/{endpoint_id}/secret")).json()["secret"]
        assert same == secret
        rotated = await browser.post(f"/console/endpoints/{endpoint_id}/rotate", {"confirm": "yes"})
        now = (await hub.http.get(f"/v1/endpoints/{endpoint_id}/secret")).json()["secret"]
        assert now != secret and now in rotated.text


async def test_events_are_found_by_type_customer_contract_transaction_and_time(hub):
    for n, (customer, contract) in enumerate([("C-1", "K-1"), ("C-2", "K-2")]):
        answer = await post(
            hub,
            "/v1/usage-completions",
            completion(
                transactionId=f"t-{n}", customerNumber=customer, externalContractId=contract
            ),
        )
        assert answer.status_code == 202
    events = (await hub.http.get("/v1/events")).json()["data"]
    by_customer = {e["parameters"]["customerNumber"]: e["id"] for e in events}
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        for query, wanted in [
            ({"customer": "C-1"}, {"C-1"}),
            ({"contract": "K-2"}, {"C-2"}),
            ({"transaction": "t-1"}, {"C-2"}),
            ({"type": "subscriptions/billingInformationAvailable"}, {"C-1", "C-2"}),
            ({"type": "webhook.other"}, set()),
            ({"since": "2999-01-01T00:00"}, set()),
            ({"until": "2999-01-01T00:00"}, {"C-1", "C-2"}),
        ]:
            page = await browser.get("/console/events", **query)
            assert page.status_code == 200
            shown = {c for c, event_id in by_customer.items() if event_id in page.text}
            assert shown == wanted, query
        bad = await browser.get("/console/events", since="yesterday")
        assert bad.status_code == 422 and "since" in bad.text


async def test_an_event_page_shows_the_payload_as_sent_and_resends(hub, receiver):
    app, server = receiver
    endpoint = await hub.endpoint(server.url)
    app.set_secret(endpoint["secret"])
    raw = b'{"type": "webhook.custom", "parameters": {"amount": 22.70, "n": 1E+2}}'
    await hub.declare("webhook.custom")
    accepted = await hub.http.post(
        "/v1/events", content=raw, headers={"content-type": "application/json"}
    )
    event_id = accepted.json()["id"]
    await hub.drain()
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        page = await browser.get(f"/console/events/{event_id}")
        assert '"amount": 22.70' in page.text.replace("&#34;", '"')
        assert "succeeded" in page.text and server.url in page.text
        resent = await browser.post(
            f"/console/events/{event_id}/resend", {"endpoint_id": endpoint["id"]}
        )
        assert resent.status_code == 303 and "notice=resent&n=1" in resent.headers["location"]
    await hub.drain()
    assert app.inbox.count() == 1  # same webhook-id: the receiver de-duplicates
    deliveries = (await hub.http.get(f"/v1/events/{event_id}")).json()["deliveries"]
    assert len(deliveries) == 2


async def test_a_replay_is_counted_before_it_starts_and_can_be_cancelled(hub):
    endpoint = await hub.endpoint("http://127.0.0.1:9/down")
    for n in range(3):
        await hub.publish("webhook.custom", {"n": n})
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        await browser.get("/console/replays")
        choices = {
            "endpoint_id": endpoint["id"],
            "since": "2020-01-01T00:00",
            "status": "all",
            "rate_per_s": "1",
        }
        preview = await browser.post("/console/replays/preview", choices)
        assert preview.status_code == 200
        assert re.search(r'id="matched"><strong>3</strong>', preview.text)
        assert (await hub.http.get("/v1/replays")).json()["data"] == []  # nothing started
        started = await browser.post("/console/replays", choices)
        assert started.status_code == 303
        progress = await browser.get(started.headers["location"])
        assert 'http-equiv="refresh"' in progress.text and "running" in progress.text
        replay_id = started.headers["location"].split("/")[-1]
        cancelled = await browser.post(f"/console/replays/{replay_id}/cancel")
        assert cancelled.status_code == 303
    assert (await hub.http.get(f"/v1/replays/{replay_id}")).json()["status"] == "cancelled"
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        await browser.get("/console/replays")
        bad = await browser.post(
            "/console/replays/preview", {"endpoint_id": endpoint["id"], "since": "soon"}
        )
        assert bad.status_code == 422


async def test_a_replay_that_enqueued_everything_offers_cancel_while_it_delivers(hub):
    """docs/console.md: Cancel works whenever a replay is not finished — it used to be offered
    only while the replay was still enqueueing."""
    endpoint = await hub.endpoint("http://127.0.0.1:9/down")
    await hub.publish("webhook.custom", {"n": 1})
    body = {"endpoint_id": endpoint["id"], "since": "2020-01-01", "status": "all"}
    replay_id = (await hub.http.post("/v1/replays", json=body)).json()["id"]
    await hub.hub.periodic.run_once()  # everything enqueued; the delivery is pending
    assert (await hub.http.get(f"/v1/replays/{replay_id}")).json()["status"] == "running"
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        page = await browser.get(f"/console/replays/{replay_id}")
        assert "Cancel the replay" in page.text
        cancelled = await browser.post(f"/console/replays/{replay_id}/cancel")
        assert cancelled.status_code == 303
    assert (await hub.http.get(f"/v1/replays/{replay_id}")).json()["status"] == "cancelled"


async def test_an_invoice_page_downloads_its_pdf_and_its_credit_notes_documents(hub):
    """Each link on the page gives the document the API gives: the invoice's PDF and
    e-invoice, and each credit note's."""
    await seller(hub)
    assert (await post(hub, "/v1/usage-completions", completion())).status_code == 202
    number = (await hub.http.post("/v1/invoices/finalize", json={})).json()["invoices"][0]
    number = number["number"]
    credit = await hub.http.post(
        f"/v1/invoices/{number}/credit-notes", json={"reason": "cancelled trip"}
    )
    note = credit.json()["number"]
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        shown = (await browser.get(f"/console/invoices/{number}")).text
        links = re.findall(r'href="([^"]+)" download', shown)
        assert len(links) == 4, links
        documents = [
            f"/v1/invoices/{number}/pdf",
            f"/v1/invoices/{number}/e-invoice",
            f"/v1/credit-notes/{note}/pdf",
            f"/v1/credit-notes/{note}/e-invoice",
        ]
        for link, api in zip(links, documents, strict=True):
            got = await browser.get(link)
            expected = await hub.http.get(api)
            assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
            assert got.headers["content-type"] == expected.headers["content-type"], link
            start = b"%PDF-" if api.endswith("pdf") else b"<?xml"
            assert got.content[:5] == expected.content[:5] == start


async def test_billing_is_finalized_shown_downloaded_and_credited_within_the_api_limits(hub):
    await seller(hub)
    answer = await post(hub, "/v1/usage-completions", completion())
    assert answer.status_code == 202
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        billing = await browser.get("/console/billing", customer="C-1")
        assert "t-1" in billing.text and "open" in billing.text
        finalized = await browser.post("/console/billing/finalize", {"customerNumber": "C-1"})
        assert finalized.status_code == 303
        number = finalized.headers["location"].split("/")[-1]
        invoice = await browser.get(f"/console/invoices/{number}")
        assert invoice.status_code == 200 and "VAT breakdown" in invoice.text
        xml = await browser.get(f"/console/invoices/{number}/e-invoice.xml")
        assert xml.headers["content-type"].startswith("application/xml")
        assert number.encode() in xml.content and xml.content.startswith(b"<?xml")
        before = await state_of(hub)
        too_much = await browser.post(
            f"/console/invoices/{number}/credit-notes",
            {
                "scope": "lines",
                "line_1_measure": "amount",
                "line_1_value": "1000000",
                "reason": "goodwill",
            },
        )
        assert too_much.status_code == 422 and "line 1" in too_much.text.lower()
        assert 'value="1000000"' in too_much.text  # what was typed stays
        assert await state_of(hub) == before
        unasked = await browser.post(
            f"/console/invoices/{number}/credit-notes", {"scope": "all", "reason": "cancelled trip"}
        )
        assert unasked.status_code == 422 and await state_of(hub) == before
        credited = await browser.post(
            f"/console/invoices/{number}/credit-notes",
            {"scope": "all", "reason": "cancelled trip", "confirm": "yes"},
        )
        assert credited.status_code == 303
        shown = await browser.get(f"/console/invoices/{number}")
        assert "cancelled trip" in shown.text and "credited" in shown.text
        assert "Create a credit note" not in shown.text  # nothing is left to credit
        after = await state_of(hub)
        again = await browser.post(
            f"/console/invoices/{number}/credit-notes",
            {"scope": "all", "reason": "from a stale tab", "confirm": "yes"},
        )
        assert again.status_code == 409 and "credited in full already" in again.text
        assert await state_of(hub) == after


async def test_an_unknown_console_path_is_a_page_not_json(hub):
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        answer = await browser.get("/console/nothing-here")
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
        bad = await browser.get("/console/endpoints/ep_x", status="sleeping")
        assert bad.status_code == 404  # the endpoint is checked before the filter
    assert (await hub.http.get("/v1/nothing")).json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("page", ["/console/", "/console/endpoints"])
async def test_failing_endpoints_come_first_on_the_overview(hub, page):
    failing = await hub.endpoint("http://127.0.0.1:9/failing")
    for n in range(3):  # registered later (listed first by age), and never sent anything
        await hub.endpoint(f"http://127.0.0.1:9/fine-{n}", event_types=["webhook.none"])
    for n in range(2):
        await hub.publish("webhook.custom", {"n": n})
    for _ in range(10):
        await hub.drain()
    assert (await hub.http.get(f"/v1/endpoints/{failing['id']}")).json()["status"] == "failing"
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        text = (await browser.get(page)).text
        if page == "/console/":
            assert text.index("/failing") < min(text.index(f"/fine-{n}") for n in range(3))
            assert "deliveries queued" in text and "<svg" in text
        else:
            assert "failing" in text


def test_the_pages_json_reads_numbers_as_sent():
    """The pretty filter keeps 22.70 (jsoncodec, not json.loads + float)."""
    from app.console.render import _pretty

    assert '"amount": 22.70' in _pretty(b'{"amount": 22.70}')
    assert jsoncodec.loads(_pretty(b'{"a": 1.10}').encode()) == {"a": jsoncodec.loads(b"1.10")}


async def test_an_oversized_form_is_refused_before_it_is_read(hub):
    async with ConsoleBrowser(hub.app) as browser:
        await browser.get("/console/sign-in")
        huge = await browser.post("/console/sign-in", {"key": "x" * 70_000})
        assert huge.status_code == 413 and huge.headers["content-type"].startswith("text/html")
        await browser.sign_in(API_KEY)
        await browser.get("/console/endpoints/new")
        before = await state_of(hub)
        huge = await browser.post(
            "/console/endpoints", {"url": "http://127.0.0.1:9/x", "description": "d" * 70_000}
        )
        assert huge.status_code == 413
        assert await state_of(hub) == before


async def test_finalizing_every_customer_asks_once_and_one_customer_does_not(hub):
    """ "Finalize what is open (every customer)" numbers everyone's invoices: its box must be
    ticked; finalizing one customer's, which the page names, needs none."""
    await seller(hub)
    for customer in ("C-1", "C-2", "C-3"):
        answer = await post(hub, "/v1/usage-completions", completion(
            customerNumber=customer, transactionId=f"t-{customer}"))  # fmt: skip
        assert answer.status_code == 202
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        billing = await browser.get("/console/billing")
        assert 'name="confirm" value="yes" required' in billing.text
        before = await state_of(hub)
        unasked = await browser.post("/console/billing/finalize", {})
        assert unasked.status_code == 422 and await state_of(hub) == before
        one = await browser.post("/console/billing/finalize", {"customerNumber": "C-1"})
        assert one.status_code == 303
        every = await browser.post("/console/billing/finalize", {"confirm": "yes"})
        assert every.status_code == 303
    invoices = (await hub.http.get("/v1/invoices")).json()["data"]
    assert sorted(i["customerNumber"] for i in invoices) == ["C-1", "C-2", "C-3"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (0.0000123, "< 0.0001"),
        (0.0076389, "0.0076"),
        (0.25, "0.25"),
        (2.5, "2.5"),
        (42.25, "42.2"),
        (1234.5, "1,234"),
        (None, "—"),
    ],
)
def test_rates_are_shown_with_digits_a_reader_uses(value: float | None, shown: str):
    """0.0000123 per minute was written 1.23e-05."""
    assert _rate(value) == shown


@pytest.mark.parametrize(
    ("share", "shown"), [(1.0, "100 %"), (0.99996, "99.9 %"), (0.5, "50.0 %"), (0.0, "0.0 %")]
)
def test_a_success_rate_is_100_only_when_nothing_failed(share: float, shown: str):
    assert _percent(share) == shown


def test_times_from_the_api_models_are_written_like_the_others():
    assert (
        _when("2026-11-17T09:00:00.000Z") == _when(1_794_906_000_000) == ("2026-11-17 09:00:00 UTC")
    )
