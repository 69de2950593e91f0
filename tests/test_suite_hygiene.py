"""The suite keeps its own rules: one way to wait for work that runs elsewhere
(tests/waiting.py, a poll with a deadline), and every test that starts billhook processes
marked `slow` (`make test-fast` leaves them out)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
STARTS_PROCESSES = re.compile(r"\b(hub_process|create_subprocess_exec|subprocess\.Popen)\(")


def _sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in TESTS.glob("*.py")}


def test_waiting_is_done_in_one_place():
    """A deadline loop of its own (there were four copies of `until`, and loops without a
    deadline) is a second place to get waiting wrong."""
    for name, source in _sources().items():
        if name in ("waiting.py", "test_suite_hygiene.py"):
            continue
        assert "def until(" not in source and "def _until(" not in source, name
        assert not re.search(r"loop\(\)\.time\(\) \+", source), name


def _slow(node: ast.AST) -> bool:
    return "mark.slow" in ast.unparse(node)


def test_every_test_that_starts_processes_is_marked_slow():
    for name, source in _sources().items():
        if not name.startswith("test_") or name == "test_suite_hygiene.py":
            continue
        tree = ast.parse(source)
        module_slow = any(
            isinstance(n, ast.Assign) and "pytestmark" in ast.unparse(n) and _slow(n)
            for n in tree.body
        )
        helpers = {
            n.name
            for n in tree.body
            if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef)
            and not n.name.startswith("test_")
            and STARTS_PROCESSES.search(ast.unparse(n))
        }
        for node in tree.body:
            if not isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
                continue
            if not node.name.startswith("test_"):
                continue
            body = ast.unparse(node)
            starts = STARTS_PROCESSES.search(body) or any(
                re.search(rf"\b{h}\(", body) for h in helpers
            )
            if starts:
                marked = module_slow or any(_slow(d) for d in node.decorator_list)
                assert marked, f"{name}::{node.name} starts processes: mark it slow"
