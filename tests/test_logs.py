"""Logs are JSON lines that carry the process role and the ids a line is about."""

from __future__ import annotations

import json
import logging

import pytest

from app import logs
from tests.conftest import HubClient
from tests.test_invoices import complete, finalize, item, seller


def test_a_log_line_is_one_json_object_with_role_and_ids(capsys: pytest.CaptureFixture[str]):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("worker")
        logging.getLogger("billhook.replays").warning(
            "advancing a replay failed", extra={"replay_id": "rp_1", "tenant_id": "tn_1"}
        )
        logging.getLogger("asyncpg.pool").warning("a library's line")
    finally:
        root.handlers[:], root.level = handlers, level
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    mine, theirs = lines
    assert mine["event"] == "advancing a replay failed" and mine["level"] == "warning"
    assert (mine["role"], mine["replay_id"], mine["tenant_id"]) == ("worker", "rp_1", "tn_1")
    assert mine["logger"] == "billhook.replays" and "timestamp" in mine and "pid" in mine
    assert theirs["logger"] == "asyncpg.pool" and theirs["role"] == "worker"


def test_a_lost_database_is_one_line_from_asyncpg_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("serve")
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError:
            logging.getLogger("asyncpg.pool").warning("Failed to restore the pool", exc_info=True)
    finally:
        root.handlers[:], root.level = handlers, level
    [line] = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert line["event"] == (
        "Failed to restore the pool: ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert "exception" not in line


async def test_rendering_a_pdf_writes_no_library_chatter_to_the_log(
    hub: HubClient, capsys: pytest.CaptureFixture[str]
):
    """fontTools narrates every subset at INFO (~74 lines per PDF); libraries speak at WARNING."""
    await seller(hub)
    await complete(hub, items=[item("11.99")])
    _, [invoice] = await finalize(hub)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("serve")
        assert logging.getLogger("fontTools.subset").getEffectiveLevel() >= logging.WARNING
        pdf = await hub.http.get(f"/v1/invoices/{invoice['number']}/pdf")
    finally:
        root.handlers[:], root.level = handlers, level
    assert pdf.status_code == 200
    said = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [s for s in said if not s["logger"].startswith("billhook")] == []
