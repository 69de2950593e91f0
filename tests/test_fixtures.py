"""Every payload in fixtures/ is one the README posts: each is accepted by its route as it
stands (an event fixture holds to its type's schema in the catalog), and none goes unchecked."""

from __future__ import annotations

from tests.conftest import HubClient
from tests.test_billing import FIXTURES

JSON = {"content-type": "application/json"}
# In the README's order: the trip names the price model created before it.
ROUTES = [
    ("event.example.json", "POST", "/v1/events"),
    ("billing-information-available.seed.json", "POST", "/v1/events"),
    ("price-model.car-sharing.json", "POST", "/v1/price-models"),
    ("usage-completion.car-sharing.json", "POST", "/v1/usage-completions"),
    ("usage-completion.seed.json", "POST", "/v1/usage-completions"),
    ("charge.example.json", "POST", "/v1/charges"),
    ("seller.example.json", "PUT", "/v1/seller"),
]


def test_every_fixture_is_checked():
    assert sorted(name for name, _, _ in ROUTES) == sorted(p.name for p in FIXTURES.glob("*"))


async def test_every_fixture_is_accepted_by_its_route(hub: HubClient):
    price_model = ""
    for name, method, path in ROUTES:
        text = (FIXTURES / name).read_text().replace("PRICE_MODEL_ID", price_model)
        answer = await hub.http.request(method, path, content=text.encode(), headers=JSON)
        assert answer.status_code in (200, 201, 202), (name, answer.text)
        if path == "/v1/price-models":
            price_model = answer.json()["id"]
