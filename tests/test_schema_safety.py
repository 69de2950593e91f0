"""A tenant's declared JSON Schema stays inside itself and inside its budget: no reference is
ever fetched (http, file, relative), recursion that never descends is refused when declared,
patterns are RE2 (linear, no catastrophic backtracking), keywords that were quadratic or
overflowed are exact and linear, and whatever a schema does, an event is a 202 or a 422 —
never a 500, never a frozen hub. Declared types can be removed."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import schemas
from app.records import DeclaredType
from app.store import queries
from app.testing import Receiver
from tests.conftest import API_KEY, HubClient
from tests.console import ConsoleBrowser


class Recorder:
    """An HTTP server that serves a schema to whoever asks, and remembers that they asked."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.requests.append(scope["path"])
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"type": "string"}'})


async def declare(hub: HubClient, name: str, schema: Any) -> Any:
    return await hub.http.post("/v1/event-types", json={"name": name, "schema": schema})


async def publish(hub: HubClient, name: str, parameters: Any) -> Any:
    return await hub.http.post("/v1/events", json={"type": name, "parameters": parameters})


async def store_unchecked(hub: HubClient, name: str, schema: Any) -> None:
    """A type declared before these rules existed: written to the store as it was then."""
    await hub.hub.store.event_types.insert(DeclaredType("tn_default", name, "", schema, 0))


@pytest.mark.parametrize(
    "ref",
    [
        "http://127.0.0.1:{port}/schema.json",
        "file:///etc/passwd",
        "other.json",
        "//127.0.0.1:{port}/x",
        "http://127.0.0.1:{port}/schema.json#/$defs/x",
    ],
)
async def test_a_reference_outside_the_schema_is_refused_and_nothing_is_fetched(
    hub: HubClient, ref: str
):
    """The critical one: a `$ref` made the hub fetch any URL (file:// included) past the
    egress guard and quote the document in the 422. Now it is refused where it is declared,
    and a schema stored before that rule refuses events instead of fetching."""
    recorder = Recorder()
    async with Receiver(recorder) as server:
        target = ref.format(port=server.port)
        refused = await declare(hub, "rental.returned", {"properties": {"x": {"$ref": target}}})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["details"][0]["loc"] == ["schema", "properties", "x", "$ref"]
        await store_unchecked(hub, "legacy.type", {"$ref": target})
        answer = await publish(hub, "legacy.type", {"x": 1})
        assert answer.status_code == 422, answer.text
        assert "no longer accepted" in answer.text and "root:" not in answer.text
        assert recorder.requests == []  # nothing was fetched, ever


async def test_references_inside_the_schema_work(hub: HubClient):
    """JSON pointers, anchors and escaped names resolve within the document."""
    schema = {
        "$defs": {"money": {"type": "number", "minimum": 0}, "a/b": {"$anchor": "code"}},
        "properties": {
            "amount": {"$ref": "#/$defs/money"},
            "code": {"$ref": "#code", "type": "string"},
            "other": {"$ref": "#/$defs/a~1b"},
        },
    }
    assert (await declare(hub, "t.refs", schema)).status_code == 201
    assert (await publish(hub, "t.refs", {"amount": 3, "code": "x"})).status_code == 202
    bad = await publish(hub, "t.refs", {"amount": -1})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"] == [
        "parameters",
        "amount",
    ]
    missing = await declare(hub, "t.missing", {"$ref": "#/$defs/nothing"})
    assert missing.status_code == 422 and "not in the schema" in missing.text


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"allOf": [{"$ref": "#"}]},
        {
            "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}},
            "$ref": "#/$defs/a",
        },
        {"not": {"if": {"$ref": "#"}}},
        {"$defs": {"a": {"$anchor": "me", "oneOf": [{"$ref": "#me"}]}}},
    ],
)
async def test_recursion_that_never_descends_is_refused_when_declared(
    hub: HubClient, schema: dict[str, Any]
):
    """{"$ref": "#"} used to be accepted, then every event of the type was a 500
    (RecursionError); a schema stored before the rule is a 422 at publish."""
    refused = await declare(hub, "t.loop", schema)
    assert refused.status_code == 422 and "never end" in refused.text, refused.text
    await store_unchecked(hub, "t.legacy", schema)
    assert (await publish(hub, "t.legacy", {"a": 1})).status_code == 422


async def test_a_recursive_schema_that_descends_checks_deep_values(hub: HubClient):
    """A tree is a legitimate recursive schema: each reference descends into the value."""
    tree = {
        "$defs": {
            "node": {
                "type": "object",
                "required": ["v"],
                "properties": {
                    "v": {"type": "integer"},
                    "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
            }
        },
        "$ref": "#/$defs/node",
    }
    assert (await declare(hub, "t.tree", tree)).status_code == 201
    value: dict[str, Any] = {"v": 0}
    for depth in range(30):
        value = {"v": depth, "kids": [value]}
    assert (await publish(hub, "t.tree", value)).status_code == 202
    value["kids"][0]["kids"][0]["v"] = "x"
    bad = await publish(hub, "t.tree", value)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"][:3] == [
        "parameters",
        "kids",
        "0",
    ]


async def test_schemas_are_bounded_in_size_and_depth(hub: HubClient):
    big = {"properties": {f"p{i}": {"type": "string", "description": "x" * 60} for i in range(900)}}
    assert (await declare(hub, "t.big", big)).status_code == 422
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(schemas.MAX_DEPTH + 1):
        deep = {"items": deep}
    refused = await declare(hub, "t.deep", deep)
    assert refused.status_code == 422 and "nest" in refused.text


@pytest.mark.parametrize(
    ("keyword", "schema"),
    [
        ("$id", {"$id": "https://example.com/s", "type": "object"}),
        ("$schema", {"$schema": "http://json-schema.org/draft-07/schema#"}),
        ("$dynamicRef", {"$dynamicRef": "#x"}),
        ("pattern", {"properties": {"a": {"pattern": "(a)\\1"}}}),
        ("pattern", {"properties": {"a": {"pattern": "(?=a)b"}}}),
        ("patternProperties", {"patternProperties": {"(?<!x)y": {}}}),
    ],
)
async def test_what_could_reach_outside_or_backtrack_is_refused_by_name(
    hub: HubClient, keyword: str, schema: dict[str, Any]
):
    refused = await declare(hub, "t.refused", schema)
    assert refused.status_code == 422, refused.text
    assert keyword in refused.json()["error"]["details"][0]["loc"]
    assert (await hub.http.get("/v1/event-types")).json()["data"][-1]["name"] != "t.refused"


def _finishes(work: Any) -> Any:
    """Runs `work` in a thread and gives it a minute: a backtracking engine needs longer than
    the universe's age for the inputs below, so finishing at all is the proof."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the check did not finish"
    return result[0]


def test_a_catastrophic_pattern_runs_in_linear_time():
    """`^(a+)+$` against "a"*26 + "!" froze the hub 2.7 s, doubling per character."""
    compiled = schemas.Compiled({"properties": {"s": {"pattern": "^(a+)+$"}}})
    problems = _finishes(lambda: compiled.problems({"s": "a" * 5000 + "!"}))
    assert [p.loc for p in problems] == [["s"]]
    keys = schemas.Compiled({"patternProperties": {"^(a|a)*$": {"type": "string"}}})
    assert _finishes(lambda: keys.problems({"a" * 5000 + "!": 1})) == []


async def test_an_exponential_schema_stops_at_its_budget_with_a_422(hub: HubClient):
    """Nested anyOf through references multiplies the work per level (5^10 here): the check
    stops once the request's CPU budget is spent, answered as a 422 that says so."""
    defs: dict[str, Any] = {"a10": {"type": "string"}}
    for level in range(10):
        nxt = {"$ref": f"#/$defs/a{level + 1}"}
        defs[f"a{level}"] = {"anyOf": [{**nxt, "description": str(n)} for n in range(5)]}
    assert (await declare(hub, "t.exp", {"$defs": defs, "$ref": "#/$defs/a0"})).status_code == 201
    publishing = asyncio.create_task(publish(hub, "t.exp", {"x": 1}))
    health = await hub.http.get("/healthz")  # served while the check runs, not after it
    assert health.status_code == 200 and not publishing.done()
    answer = await publishing
    assert answer.status_code == 422 and "budget" in answer.json()["error"]["message"]


async def test_unique_items_and_multiple_of_are_exact_and_linear(hub: HubClient):
    """uniqueItems compared every pair (20,000 arrays: 200 million comparisons);
    multipleOf on 1E39 / 1E-39 overflowed Decimal's context (500)."""
    unique = {"properties": {"n": {"uniqueItems": True}}}
    assert (await declare(hub, "t.unique", unique)).status_code == 201
    assert (await publish(hub, "t.unique", {"n": [[n] for n in range(20_000)]})).status_code == 202
    assert (await publish(hub, "t.unique", {"n": [1, 1.0]})).status_code == 422  # one number
    assert (await publish(hub, "t.unique", {"n": [1, True]})).status_code == 202  # not the same
    multiple = {"properties": {"n": {"multipleOf": 1e-39}}}
    assert (await declare(hub, "t.multiple", multiple)).status_code == 201
    assert (await publish(hub, "t.multiple", {"n": 1e39})).status_code == 202
    assert (await publish(hub, "t.multiple", {"n": 1.5e-38})).status_code == 202
    assert (await publish(hub, "t.multiple", {"n": 1.5e-39})).status_code == 422


_KEYWORDS = st.sampled_from(
    [
        "type",
        "properties",
        "items",
        "anyOf",
        "allOf",
        "oneOf",
        "not",
        "$ref",
        "pattern",
        "minimum",
        "multipleOf",
        "uniqueItems",
        "enum",
        "required",
        "$defs",
        "if",
        "then",
        "additionalProperties",
        "prefixItems",
        "contains",
        "const",
        "maxLength",
    ]
)
_LEAF = st.one_of(
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["string", "object", "#", "#/$defs/a", "^a+$", "(a", "array", "number"]),
)
_SCHEMAS = st.recursive(
    st.dictionaries(_KEYWORDS, _LEAF, max_size=3),
    lambda inner: st.dictionaries(
        _KEYWORDS, st.one_of(inner, st.lists(inner, max_size=3), _LEAF), max_size=4
    ),
    max_leaves=12,
)
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=_SCHEMAS, values=st.lists(_VALUES, min_size=1, max_size=3))
def test_any_schema_is_accepted_or_refused_and_never_fails_to_run(schema: Any, values: Any):
    """Random schemas (references, patterns, loops included): declaring either refuses with a
    reason or gives a schema whose every run is a verdict, never an exception."""
    try:
        schemas.check(schema)
    except schemas.SchemaRefused as exc:
        refused = exc.message
    else:
        refused = ""
    if refused:
        return
    compiled = schemas.Compiled(schema)
    assert compiled.refused is None
    for value in values:
        for problem in compiled.problems(value):
            assert isinstance(problem.msg, str) and isinstance(problem.loc, list)


def test_the_query_loader_refuses_two_queries_of_one_name():
    """`event_types_of_tenant` was defined twice in common.sql and the later one silently won
    (declaring any event type then broke the tenant's console)."""
    text = "-- name: a\nSELECT 1;\n-- name: b\nSELECT 2;\n-- name: a\nSELECT 3;\n"
    with pytest.raises(queries.DuplicateQuery, match="'a'"):
        queries.parse(text, "common.sql")
    for dialect in ("sqlite", "postgres"):
        assert queries.load(dialect)  # the shipped files load


async def test_declaring_a_type_leaves_the_console_working(hub: HubClient):
    """The events, replays and endpoint pages used to answer 500 once a type was declared."""
    schema = {"type": "object"}
    assert (await declare(hub, "rental.returned", schema)).status_code == 201
    assert (await publish(hub, "rental.returned", {})).status_code == 202
    endpoint = await hub.endpoint("http://127.0.0.1:9/x")
    async with ConsoleBrowser(hub.app) as browser:
        await browser.sign_in(API_KEY)
        for path in ("/console/events", "/console/endpoints/new",
                     f"/console/endpoints/{endpoint['id']}/edit", "/console/replays"):  # fmt: skip
            page = await browser.get(path)
            assert page.status_code == 200, (path, page.text[:300])


async def test_a_declared_type_can_be_removed(hub: HubClient):
    assert (await declare(hub, "rental.returned", {"type": "object"})).status_code == 201
    endpoint = await hub.endpoint("http://127.0.0.1:9/x", event_types=["rental.returned"])
    busy = await hub.http.delete("/v1/event-types/rental.returned")
    assert busy.status_code == 409 and endpoint["id"] in busy.text
    await hub.http.patch(f"/v1/endpoints/{endpoint['id']}", json={"event_types": None})
    assert (await hub.http.delete("/v1/event-types/rental.returned")).status_code == 204
    names = [t["name"] for t in (await hub.http.get("/v1/event-types")).json()["data"]]
    assert "rental.returned" not in names
    assert (await hub.http.delete("/v1/event-types/rental.returned")).status_code == 404
    built_in = await hub.http.delete("/v1/event-types/subscriptions/billingInformationAvailable")
    assert built_in.status_code == 409
    again = await declare(hub, "rental.returned", {"required": ["km"]})
    assert again.status_code == 201  # the name is free again, with its new schema at once
    assert (await publish(hub, "rental.returned", {})).status_code == 422
    assert (await publish(hub, "rental.returned", {"km": 1})).status_code == 202
