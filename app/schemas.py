"""Tenant-declared JSON Schemas (draft 2020-12), made safe to keep and to run.

A declared schema is one self-contained document: its references point inside it only (no
`$id`, no URL, no file, nothing fetched — ever), it is bounded in size and depth, it cannot
recurse without descending into the instance, and its patterns are RE2 expressions, which match
in linear time. A check runs on a thread of its own (the event loop keeps serving meanwhile),
every keyword stops once the request's CPU budget is spent, and `uniqueItems`/`multipleOf` are
exact and linear. So no schema can read outside itself, freeze
the hub, or turn an event into a 500: each way it could is a 422 at declaration or at use.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import unquote

import re2
import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import SchemaError
from jsonschema.validators import extend

from app import jsoncodec

MAX_BYTES = 64 * 1024  # a schema of a few hundred properties is ~20 KiB
MAX_DEPTH = 32  # subschemas inside each other, and in-place references chained
BUDGET_S = 0.5  # CPU seconds one request may spend checking an event against its schema
BATCH_BUDGET_S = 2.0  # … and a batch of up to 1,000 events
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Keywords whose value is a schema, a list of schemas, or a map of names to schemas; and which
# of them apply to the same instance (in place) rather than to a part of it.
_ONE = ("additionalProperties", "items", "contains", "propertyNames", "not", "if", "then",
        "else", "unevaluatedItems", "unevaluatedProperties", "contentSchema")  # fmt: skip
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_IN_PLACE = {"allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas"}
_UNSUPPORTED = {
    "$id": "a declared schema is one document: use $defs and references such as #/$defs/x",
    "$dynamicRef": "dynamic references are not supported: use $ref",
    "$dynamicAnchor": "dynamic anchors are not supported: use $anchor",
    "$recursiveRef": "not a draft 2020-12 keyword: use $ref",
    "$recursiveAnchor": "not a draft 2020-12 keyword: use $anchor",
}
Path = tuple[str, ...]


class SchemaRefused(ValueError):
    """A declared schema billhook will not hold: where (a path in the schema) and why."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class BudgetSpent(Exception):
    """Checking used up the request's CPU budget."""


@dataclass(frozen=True, slots=True)
class _Node:
    path: Path
    schema: Any
    in_place: tuple[Path, ...]  # subschemas (and reference targets) applied to the same value


def check(schema: Any) -> None:
    """Raise SchemaRefused unless `schema` is a JSON Schema billhook can run safely."""
    if len(jsoncodec.canonical(schema)) > MAX_BYTES:
        raise SchemaRefused((), f"a schema is at most {MAX_BYTES // 1024} KiB")
    if isinstance(schema, dict) and schema.get("$schema", DIALECT) != DIALECT:
        raise SchemaRefused(("$schema",), f"only {DIALECT} is supported")
    nodes = _walk(schema)
    _refuse_cycles(nodes)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise SchemaRefused(tuple(map(str, exc.absolute_path)), exc.message) from exc
    for node in nodes.values():
        _check_patterns(node)


def _walk(root: Any) -> dict[Path, _Node]:
    """Every subschema by its path, reference targets included: a reference may point at any
    place of the document, which is then used as a schema."""
    anchors: dict[str, Path] = {}
    nodes: dict[Path, _Node] = {}
    refs: list[tuple[Path, str]] = []
    pending: list[tuple[Path, Any, int]] = [((), root, 0)]
    while pending:
        while pending:
            path, schema, depth = pending.pop()
            if path not in nodes:
                pending += _visit(path, schema, depth, nodes, anchors, refs)
        for path, ref in refs:
            target = _target(root, path, ref, anchors)
            node = nodes[path]
            nodes[path] = _Node(path, node.schema, (*node.in_place, target))
            if target not in nodes:
                pending.append((target, _resolve(root, target, (*path, "$ref")), 0))
        refs.clear()
    return nodes


def _visit(
    path: Path,
    schema: Any,
    depth: int,
    nodes: dict[Path, _Node],
    anchors: dict[str, Path],
    refs: list[tuple[Path, str]],
) -> list[tuple[Path, Any, int]]:
    """Record one subschema; return its children to visit."""
    if not isinstance(schema, dict | bool):
        raise SchemaRefused(path, "a schema is an object or a boolean")
    if depth > MAX_DEPTH:
        raise SchemaRefused(path, f"schemas nest at most {MAX_DEPTH} levels")
    if isinstance(schema, bool):
        nodes[path] = _Node(path, schema, ())
        return []
    for keyword, why in _UNSUPPORTED.items():
        if keyword in schema:
            raise SchemaRefused((*path, keyword), why)
    if path and "$schema" in schema:
        raise SchemaRefused((*path, "$schema"), "$schema belongs at the top only")
    if isinstance(schema.get("$anchor"), str):
        anchors[schema["$anchor"]] = path
    if isinstance(schema.get("$ref"), str):
        refs.append((path, schema["$ref"]))
    children = list(_children(path, schema))
    nodes[path] = _Node(path, schema, tuple(child for child, _, applies in children if applies))
    return [(child, value, depth + 1) for child, value, _ in children]


def _children(path: Path, schema: dict[str, Any]) -> Iterator[tuple[Path, Any, bool]]:
    for keyword in _ONE:
        if keyword in schema:
            yield (*path, keyword), schema[keyword], keyword in _IN_PLACE
    for keyword in _LIST:
        if isinstance(schema.get(keyword), list):
            for index, value in enumerate(schema[keyword]):
                yield (*path, keyword, str(index)), value, keyword in _IN_PLACE
    for keyword in _MAP:
        if isinstance(schema.get(keyword), dict):
            for name, value in schema[keyword].items():
                yield (*path, keyword, name), value, keyword in _IN_PLACE


def _target(root: Any, path: Path, ref: str, anchors: dict[str, Path]) -> Path:
    where = (*path, "$ref")
    if not ref.startswith("#"):
        raise SchemaRefused(
            where, f"{ref[:80]!r} points outside the schema: refer inside it (#/$defs/…)"
        )
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        if fragment not in anchors:
            raise SchemaRefused(where, f"no $anchor {fragment!r} in the schema")
        return anchors[fragment]
    target = tuple(p.replace("~1", "/").replace("~0", "~") for p in fragment.split("/")[1:])
    _resolve(root, target, where)
    return target


def _resolve(root: Any, target: Path, where: Path) -> Any:
    node = root
    for part in target:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SchemaRefused(where, f"#/{'/'.join(target)} is not in the schema")
    return node


def _refuse_cycles(nodes: dict[Path, _Node]) -> None:
    """A chain of in-place applications that comes back to where it started never ends
    ({"$ref": "#"}); one that is too long exhausts the interpreter's stack."""
    depth: dict[Path, int] = {}
    active: set[Path] = set()

    def longest(path: Path) -> int:
        if path in depth:
            return depth[path]
        if path in active:
            raise SchemaRefused(path, "the schema refers to itself without descending into "
                                "the value (it would never end)")  # fmt: skip
        active.add(path)
        node = nodes.get(path)
        found = 1 + max((longest(p) for p in node.in_place), default=0) if node else 0
        active.discard(path)
        if found > MAX_DEPTH:
            raise SchemaRefused(path, f"at most {MAX_DEPTH} schemas apply to one value in a "
                                "chain of references")  # fmt: skip
        depth[path] = found
        return found

    for path in nodes:
        longest(path)


def _check_patterns(node: _Node) -> None:
    if not isinstance(node.schema, dict):
        return
    found: list[tuple[tuple[str, ...], str]] = []
    if isinstance(node.schema.get("pattern"), str):
        found.append((("pattern",), node.schema["pattern"]))
    if isinstance(node.schema.get("patternProperties"), dict):
        found += [(("patternProperties", p), p) for p in node.schema["patternProperties"]]
    for where, pattern in found:
        try:
            _regex(pattern)
        except re2.error as exc:
            raise SchemaRefused(
                (*node.path, *where),
                f"{pattern[:80]!r} is not an RE2 expression ({_reason(exc)}): billhook runs "
                "patterns in linear time, without backreferences or lookaround",
            ) from exc


def _reason(exc: re2.error) -> str:
    raw = exc.args[0] if exc.args else ""
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # refusals are answered, not written to the hub's stderr


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> Any:
    return re2.compile(pattern, _OPTIONS)


# -- running a schema ------------------------------------------------------------------------


@dataclass(slots=True)
class _Budget:
    remaining: float  # CPU seconds left for checking


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


@contextlib.contextmanager
def budget(seconds: float = BUDGET_S) -> Iterator[_Budget]:
    """One CPU budget for the checks made inside (a batch's items share their request's);
    only the time spent checking counts."""
    found = _budget.get()
    if found is not None:
        yield found
        return
    token = _budget.set(_Budget(seconds))
    try:
        yield _budget.get() or _Budget(seconds)
    finally:
        _budget.reset(token)


@contextlib.contextmanager
def _spending(left: _Budget) -> Iterator[None]:
    start = time.thread_time()
    token = _deadline.set(start + left.remaining)
    try:
        yield
    finally:
        _deadline.reset(token)
        left.remaining -= time.thread_time() - start


Keyword = Callable[[Any, Any, Any, dict[str, Any]], Any]


def _timed(keyword: Keyword) -> Keyword:
    def run(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Any:
        deadline = _deadline.get()
        if deadline is not None and time.thread_time() > deadline:
            raise BudgetSpent
        found = keyword(validator, value, instance, schema)
        if found is not None:
            yield from found

    return run


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Any:
    if validator.is_type(instance, "string") and not _regex(pattern).search(instance):
        yield ValidationError(f"the text does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        regex = _regex(pattern)
        for name, value in instance.items():
            if regex.search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _unique(validator: Any, unique: Any, instance: Any, schema: Any) -> Any:
    """Linear: equal JSON values have equal canonical bytes (1 and 1.0 too, true and 1 not)."""
    if not (unique and validator.is_type(instance, "array")):
        return
    seen: set[bytes] = set()
    for item in instance:
        key = jsoncodec.canonical(item)
        if key in seen:
            yield ValidationError("the array has non-unique elements")
            return
        seen.add(key)


def _multiple_of(validator: Any, divisor: Any, instance: Any, schema: Any) -> Any:
    """Exact, whatever the magnitudes (a Decimal remainder overflows its context)."""
    if validator.is_type(instance, "number") and Fraction(instance) % Fraction(divisor):
        yield ValidationError(f"{jsoncodec.dumps(instance).decode()} is not a multiple of "
                              f"{jsoncodec.dumps(divisor).decode()}")  # fmt: skip


_OWN: dict[str, Keyword] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "uniqueItems": _unique,
    "multipleOf": _multiple_of,
}
_Validator = extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        name: _timed(_OWN.get(name) or keyword)
        for name, keyword in Draft202012Validator.VALIDATORS.items()
    },
)


def _no_retrieval(uri: str) -> referencing.Resource[Any]:
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]


@dataclass(frozen=True, slots=True)
class Problem:
    loc: list[str]
    msg: str


class Compiled:
    """A declared schema ready to run; one that is no longer accepted (declared before these
    rules) refuses every value, saying why, instead of running."""

    def __init__(self, schema: Any) -> None:
        self.refused: SchemaRefused | None = None
        try:
            check(schema)
        except SchemaRefused as exc:
            self.refused = exc
            return
        resource = referencing.jsonschema.DRAFT202012.create_resource(schema)
        registry: referencing.Registry[Any] = referencing.Registry(
            retrieve=_no_retrieval  # type: ignore[call-arg]
        )
        self._validator = _Validator(schema, registry=registry.with_resource("", resource))

    def problems(self, instance: Any, limit: int = 20) -> list[Problem]:
        """Where `instance` breaks the schema (empty: it holds). Raises BudgetSpent."""
        if self.refused is not None:
            return [Problem([], f"the declared schema is no longer accepted "
                                f"({self.refused.message}): declare the type again")]  # fmt: skip
        try:
            with budget() as left, _spending(left):
                errors = sorted(self._validator.iter_errors(instance), key=lambda e: e.path)
        except RecursionError:
            return [Problem([], "the value nests too deeply for this schema to be checked")]
        except referencing.exceptions.Unresolvable as exc:  # refused at declaration; defensive
            return [Problem([], f"the schema refers to {exc.ref[:80]!r}, which is not in it")]
        return [Problem([*map(str, e.absolute_path)], e.message[:300]) for e in errors[:limit]]
