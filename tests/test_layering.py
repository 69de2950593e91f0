"""The architecture of docs/architecture.md, kept true by walking imports with ast."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEAVES = {
    "config",
    "errors",
    "ids",
    "clock",
    "records",
    "signing",
    "retry",
    "jsoncodec",
    "egress",
    "models",
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _modules(package: str) -> dict[str, set[str]]:
    base = ROOT / package
    return {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): _imports(p)
        for p in base.rglob("*.py")
    }


APP = _modules("app")


def test_leaves_import_nothing_of_ours():
    for leaf in LEAVES:
        ours = {m for m in APP[f"app.{leaf}"] if m == "app" or m.startswith("app.")}
        assert ours <= {"app"}, f"app.{leaf} imports {ours}"


def test_nothing_imports_the_api_or_main_but_the_entry_points():
    entry = {"app.main", "app.cli", "app.__main__"}
    for module, imports in APP.items():
        if module in entry or module.startswith("app.api"):
            continue
        bad = {m for m in imports if m.startswith(("app.api", "app.main", "app.cli"))}
        assert not bad, f"{module} imports {bad}"


def test_sql_drivers_only_in_the_store():
    for module, imports in APP.items():
        if module.startswith("app.store"):
            continue
        assert not imports & {"sqlite3", "aiosqlite", "asyncpg"}, module


def test_http_to_subscribers_only_in_delivery():
    clients = ("httptools", "aiohttp", "httpx", "urllib.request", "http.client")
    for module, imports in APP.items():
        if not module.startswith("app.delivery"):
            assert not any(m.startswith(clients) for m in imports), module


def test_delivery_never_touches_the_store():
    for module in ("app.delivery", "app.delivery.http1"):
        assert not any(m.startswith("app.store") for m in APP[module])


def test_subscribers_do_not_depend_on_billhook():
    for module, imports in _modules("subscribers").items():
        assert not any(m == "app" or m.startswith("app.") for m in imports), module
