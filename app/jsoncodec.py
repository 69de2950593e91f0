"""JSON in with exact Decimals, JSON out fast with those Decimals written as exact numbers.

This is the one place JSON is read, so it is where JSON is bounded: nesting (MAX_DEPTH), the
size of numbers (MAX_DIGITS, judged as written back) and Unicode (no lone surrogates). Whatever
passes can be stored, hashed and written back, exactly as sent, without surprises later.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import msgspec
import orjson

from app.money import plain

MAX_DEPTH = 64  # objects and arrays inside each other; billing payloads use 5
MAX_DIGITS = 40  # digits of a number written out in full: "1E+1000000" would be a million
_INT64 = range(-(2**63), 2**64)  # what orjson writes as an integer
_CONTAINERS = frozenset((dict, list))
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonError(ValueError):
    """The bytes are not a JSON document we accept."""


class JsonLimit(JsonError):
    """Valid JSON beyond what billhook keeps exactly: too deep, a number too large, a lone
    surrogate."""


def _reject_constant(name: str) -> Any:
    raise JsonError(f"{name} is not valid JSON")


def written_digits(value: Decimal) -> int:
    """How many digits `dumps` writes for the number (plain notation, its digits held): the
    bound is judged on this, so the text written reads back as the same number, accepted."""
    _, digits, exponent = value.as_tuple()
    places = int(exponent)
    return max(len(digits) + places, 0) + max(-places, 0)


def _bounded(value: Decimal, text: str) -> Decimal:
    if written_digits(value) > MAX_DIGITS:
        raise JsonLimit(
            f"the number {text[:50]} is out of range: at most {MAX_DIGITS} digits written out "
            "in full (e.g. 1.5E41 is 42 digits)"
        )
    return value


def _decimal(text: str) -> Decimal:
    """An exponent too large for the decimal module itself (1e-99999999999999999999) raises
    InvalidOperation, not ValueError: out of range like any other, never a 500."""
    try:
        return _bounded(Decimal(text), text)
    except ArithmeticError as exc:
        raise JsonLimit(f"the number {text[:50]} is out of range") from exc


def _float(text: str) -> Decimal:
    if len(text) <= MAX_DIGITS and "e" not in text and "E" not in text:
        return Decimal(text)  # no exponent: never more digits written than it has characters
    return _decimal(text)


def _int(text: str) -> int | Decimal:
    """Integers beyond 64 bits stay exact as Decimal (orjson cannot write them as int)."""
    if len(text) <= 18:
        return int(text)
    value = int(_decimal(text))
    return value if value in _INT64 else Decimal(text)


_DECODER = json.JSONDecoder(parse_float=_float, parse_int=_int, parse_constant=_reject_constant)


_FAST = msgspec.json.Decoder(float_hook=_float)
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))  # digit → "0", else " "
_LONG_RUN = b"0" * 19  # 19 digits in a row: perhaps an integer past 64 bits


def loads(data: bytes | str) -> Any:
    """Numbers with a fraction or exponent become Decimal: money never passes through float.

    Bytes must be UTF-8 (RFC 8259 §8.1 for JSON exchanged between systems). msgspec decodes
    (about 2.5 times the standard library's speed on a bulk body, floats handed over as text);
    whatever it refuses, and any integer that may exceed 64 bits (it would make an int that
    orjson cannot write back), goes to the standard library's decoder, which accepts the
    same documents and says precisely why it refuses one.
    """
    if isinstance(data, bytes) and _LONG_RUN not in data.translate(_DIGITS):
        try:
            value = _FAST.decode(data)
        except (msgspec.DecodeError, RecursionError):
            pass
        else:  # msgspec refuses lone surrogates itself; only depth is left to judge
            if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _too_deep(value):
                raise JsonLimit(f"nested deeper than {MAX_DEPTH} levels")
            return value
    return _exact(data)


def _exact(data: bytes | str) -> Any:
    """The standard library's decoder, with the same bounds."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = _DECODER.decode(text)
    except JsonError:
        raise
    except RecursionError as exc:
        raise JsonLimit(f"nested deeper than {MAX_DEPTH} levels") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonError(str(exc)) from exc
    # Cheap tests first (C speed over the text); walk the value only when they cannot decide.
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(value):
        raise JsonLimit(f"nested deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(text) and not _valid_unicode(value):
        raise JsonLimit("a string holds a lone UTF-16 surrogate (e.g. \\ud800): not Unicode text")
    return value


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [*node.keys(), *node.values()]
    return node if isinstance(node, list) else []


def _too_deep(value: Any) -> bool:
    """Level by level, holding only objects and arrays: a bulk body of a thousand items is
    mostly strings and numbers, which need no visit. The decoder makes exact dicts and lists,
    so `type() is` (three times faster here than isinstance against a union) is exact."""
    level = [value] if type(value) in _CONTAINERS else []
    for _ in range(MAX_DEPTH):
        inner: list[Any] = []
        add = inner.append
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) in _CONTAINERS:
                    add(child)
        if not inner:
            return False
        level = inner
    return True


def _valid_unicode(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return False
        else:
            stack += _children(node)
    return True


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a JSON number")
        return orjson.Fragment(plain(value))
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any, *, indent: bool = False) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_INDENT_2 if indent else 0)


def _normalised(value: Any) -> Any:
    """1.0, 1.00 and 1 are the same number: written the way orjson writes the int 1."""
    if isinstance(value, Decimal):
        return orjson.Fragment(plain(value.normalize()) if value else "0")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def canonical(value: Any) -> bytes:
    """Sorted keys, normalised numbers: equal JSON values give equal bytes (for hashing)."""
    return orjson.dumps(value, default=_normalised, option=orjson.OPT_SORT_KEYS)


def differences(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Every path at which two JSON values differ, with both sides: what a 409 names."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[dict[str, Any]] = []
        for key in list(before) + [k for k in after if k not in before]:
            found += differences(before.get(key), after.get(key), f"{path}.{key}" if path else key)
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            found += differences(old, new, f"{path}[{index}]")
        return found
    if canonical(before) == canonical(after):
        return []
    return [{"path": path, "original": before, "received": after}]
