"""The OpenAPI document is true: schemathesis generates requests for every operation of the
document the hub serves, sends them to a real hub over a socket, and checks each answer — no
5xx, no status the document does not list, every body valid against its declared schema, every
content type as declared — and that what the schema forbids (negative cases) is refused with a
4xx. Examples are bounded (and derandomized) so the run fits in `make test`."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import jsoncodec
from app.api import OPENAPI
from app.config import Settings
from app.main import create_app
from tests.conftest import (
    ADMIN_TOKEN,
    API_KEY,
    BACKENDS,
    create_schema,
    drop_schema,
    in_schema,
    make_settings,
    postgres_url,
)

CHECKS = {
    GenerationMode.POSITIVE: [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ],
    GenerationMode.NEGATIVE: [not_a_server_error, negative_data_rejection],
}
# Bounded for `make test`; BILLHOOK_CONTRACT_EXAMPLES=500 for a deeper search.
EXAMPLES = int(os.environ.get("BILLHOOK_CONTRACT_EXAMPLES", "12"))
DOCUMENT = json.loads(jsoncodec.dumps(OPENAPI))  # as a client reads it: numbers are floats
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
CASES = [
    (operation, mode)
    for operation in OPERATIONS
    for mode in GenerationMode
    # An operation with no inputs (/healthz) has nothing to get wrong.
    if mode is GenerationMode.POSITIVE
    or operation.definition.raw.get("parameters")
    or operation.definition.raw.get("requestBody")
]


@pytest.fixture(scope="module", params=BACKENDS)
def live_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real hub (uvicorn, its own thread and loop) on a free loopback port, on SQLite and on
    PostgreSQL (whose text refuses what SQLite keeps, such as NUL)."""
    if request.param == "sqlite":
        yield from _serving(make_settings(tmp_path_factory.mktemp("contract"), run_worker=False))
        return
    base = postgres_url()
    if base is None:
        pytest.skip("PostgreSQL tests run when BILLHOOK_TEST_POSTGRES_URL is set")
    schema = asyncio.run(create_schema(base))
    try:
        url = in_schema(base, schema)
        yield from _serving(make_settings(tmp_path_factory.mktemp("contract"),
                                          database_url=url, run_worker=False))  # fmt: skip
    finally:
        asyncio.run(drop_schema(base, schema))


def _serving(settings_: Settings) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(create_app(settings_), log_level="warning"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        started = threading.Event()
        deadline = time.monotonic() + 60
        while not server.started:  # a thread of its own: polled with a deadline, not awaited
            assert thread.is_alive(), "the hub did not start"
            assert time.monotonic() < deadline, "the hub did not start within 60 s"
            started.wait(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


def test_the_hub_serves_the_document_under_test(live_hub: str) -> None:
    assert httpx.get(f"{live_hub}/openapi.json").json() == DOCUMENT


@pytest.mark.parametrize(
    ("operation", "mode"), CASES, ids=[f"{o.label} {m.value}" for o, m in CASES]
)
def test_every_operation_keeps_its_documented_contract(
    live_hub: str, operation: schemathesis.APIOperation, mode: GenerationMode
) -> None:
    token = ADMIN_TOKEN if "admin" in str(operation.definition.raw.get("security")) else API_KEY

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def exercise(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=live_hub, headers={"authorization": f"Bearer {token}"}, checks=CHECKS[mode]
        )

    exercise()
