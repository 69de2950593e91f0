"""Whatever the hub accepts, it can read back: a generated event body (odd numbers written every
way JSON allows, any Unicode text including NUL and controls, keys and nesting) is either
refused with a 4xx or, once accepted, read by every read route exactly as it was sent — on
SQLite and PostgreSQL. `{"n": 1.5E41}` used to be accepted and then break GET /v1/events and
the event's page for as long as it was kept."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import jsoncodec
from tests.conftest import HubClient


def _text(value: str) -> str:
    return jsoncodec.dumps(value).decode()


def _object(members: dict[str, str]) -> str:
    """JSON text of an object whose values are JSON texts already (numbers kept as written)."""
    return "{" + ",".join(f"{_text(k)}:{v}" for k, v in members.items()) + "}"


_NUMBERS = st.builds(
    lambda digits, exponent, form: form.format(
        d=digits, e=exponent, p=Decimal(f"{digits}E{exponent}")
    ),
    st.integers(-(10**44), 10**44),
    st.integers(-45, 45),
    st.sampled_from(["{d}E{e}", "{d}e{e:+d}", "{p:f}", "{d}"]),
)
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_VALUES = st.recursive(
    st.one_of(st.sampled_from(["null", "true", "false"]), _NUMBERS, _TEXT.map(_text)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.dictionaries(_TEXT, inner, max_size=4).map(_object),
    ),
    max_leaves=12,
)
_PARAMETERS = st.dictionaries(_TEXT, _VALUES, max_size=5).map(_object)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(parameters=_PARAMETERS)
async def test_every_accepted_event_reads_back_as_sent(hub: HubClient, parameters: str):
    raw = f'{{"type": "rental.returned", "parameters": {parameters}}}'.encode()
    answer = await hub.http.post(
        "/v1/events", content=raw, headers={"content-type": "application/json"}
    )
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 300:
        assert answer.json()["error"]["code"]
        return
    sent = jsoncodec.loads(raw)["parameters"]
    event_id = answer.json()["id"]
    one = await hub.http.get(f"/v1/events/{event_id}")
    assert one.status_code == 200, one.text
    assert jsoncodec.dumps(jsoncodec.loads(one.content)["parameters"]) == jsoncodec.dumps(sent)
    listed = await hub.http.get("/v1/events", params={"limit": 3})
    assert listed.status_code == 200, listed.text
    assert event_id in {e["id"] for e in jsoncodec.loads(listed.content)["data"]}
