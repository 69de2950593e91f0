"""The architecture of docs/architecture.md, kept true by walking imports with ast."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The foundation: pure modules that import nothing of ours but each other (no I/O, no services).
FOUNDATION = {
    "config",
    "errors",
    "ids",
    "clock",
    "records",
    "signing",
    "retry",
    "money",
    "jsoncodec",
    "egress",
    "fields",
    "models",
    "inputs",
    "vat",
    "destinations",
}
PACKAGES = ("app.api", "app.console", "app.billing", "app.invoicing", "app.store", "app.delivery")


def imports_of(source: str, package: str) -> set[str]:
    """Every module a file imports, `from app import x` counted as app.x (and relative imports
    resolved against `package`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _modules(top: str) -> dict[str, set[str]]:
    modules: dict[str, set[str]] = {}
    for path in (ROOT / top).rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        modules[name] = imports_of(path.read_text(), package)
    return modules


APP = _modules("app")


def ours(imports: set[str]) -> set[str]:
    """The app modules among `imports` (a `from app.x import name` adds app.x.name too, which
    is not a module: only real modules are kept)."""
    return {m for m in imports if m in APP}


def owner(module: str) -> str:
    return next((p for p in PACKAGES if module == p or module.startswith(p + ".")), module)


def test_the_import_walker_sees_every_form_of_import():
    """The loophole the old walker had: `from app import x` counted as importing `app`."""
    found = imports_of("from app import store\nfrom .sql import x\nimport app.money", "app.api")
    assert {"app.store", "app.api.sql", "app.money"} <= found


def test_the_foundation_imports_only_the_foundation():
    for leaf in FOUNDATION:
        outside = {m for m in ours(APP[f"app.{leaf}"]) if m.removeprefix("app.") not in FOUNDATION}
        assert not outside - {"app"}, f"app.{leaf} imports {outside}"


def test_nothing_imports_the_api_the_console_or_main_but_the_entry_points():
    """The API and the console are peers over the same services: neither imports the other."""
    entry = {"app.main", "app.cli", "app.__main__"}
    for module, imports in APP.items():
        if module in entry:
            continue
        own = owner(module)
        edges = ("app.api", "app.console", "app.main", "app.cli")
        bad = {m for m in ours(imports) if m.startswith(edges) and owner(m) != own}
        assert not bad, f"{module} imports {bad}"


def test_the_api_and_the_console_reach_the_store_only_through_services():
    """Routes and pages call use cases (docs/architecture.md); SQL and store rows stay behind
    them: there is no second path to the store."""
    for module, imports in APP.items():
        if module.startswith(("app.api", "app.console")):
            bad = {m for m in ours(imports) if m == "app.store" or m.startswith("app.store.")}
            assert not bad, f"{module} imports {bad}"


def test_packages_do_not_import_each_other_in_a_cycle():
    """billing → invoicing → billing was the one cycle: shared shapes live in app.fields."""
    graph: dict[str, set[str]] = {}
    for module, imports in APP.items():
        graph.setdefault(owner(module), set()).update(
            owner(m) for m in ours(imports) if owner(m) != owner(module)
        )
    for start in graph:
        seen, stack = set(), list(graph[start])
        while stack:
            node = stack.pop()
            assert node != start, f"{start} imports itself through {sorted(seen)}"
            if node not in seen:
                seen.add(node)
                stack += graph.get(node, ())


def test_sql_drivers_only_in_the_store():
    for module, imports in APP.items():
        if module.startswith("app.store"):
            continue
        assert not imports & {"sqlite3", "aiosqlite", "asyncpg"}, module


# The command line's clients of a hub's own API (operator commands over HTTP, listen and
# trigger): not deliveries. listen's --forward-to passes on what the hub delivered to the
# developer's machine, at the developer's request, from the CLI process.
HUB_API_CLIENTS = {"app.listen", "app.remote"}


def test_http_to_subscribers_only_in_delivery():
    clients = ("httptools", "aiohttp", "aiohappyeyeballs", "httpx", "urllib.request", "http.client")
    for module, imports in APP.items():
        if not module.startswith("app.delivery") and module not in HUB_API_CLIENTS:
            assert not any(m.startswith(clients) for m in imports), module


def test_the_hub_never_imports_the_command_line_clients():
    """Only the CLI uses them: a hub process never makes HTTP calls outside delivery."""
    for module, imports in APP.items():
        if module not in HUB_API_CLIENTS | {"app.cli", "app.__main__"}:
            assert not imports & HUB_API_CLIENTS, module


def test_delivery_never_touches_the_store():
    for module in ("app.delivery", "app.delivery.http1"):
        assert not any(m.startswith("app.store") for m in APP[module])


def test_subscribers_do_not_depend_on_billhook():
    for module, imports in _modules("subscribers").items():
        assert not any(m == "app" or m.startswith("app.") for m in imports), module
