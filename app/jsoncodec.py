"""JSON in with exact Decimals, JSON out fast with those Decimals written as exact numbers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson


class JsonError(ValueError):
    """The bytes are not a JSON document we accept."""


def _reject_constant(name: str) -> Any:
    raise JsonError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def loads(data: bytes | str) -> Any:
    """Numbers with a fraction or exponent become Decimal: money never passes through float.

    Bytes must be UTF-8 (RFC 8259 §8.1 for JSON exchanged between systems).
    """
    try:
        return _DECODER.decode(data.decode("utf-8") if isinstance(data, bytes) else data)
    except JsonError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonError(str(exc)) from exc


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a JSON number")
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default)


def _normalised(value: Any) -> Any:
    """1.0, 1.00 and 1 are the same number: written the way orjson writes the int 1."""
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value.normalize(), "f") if value else "0")
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
