"""Rows ↔ records, declared once: a record's fields are named like its table's columns, so a
mapper only states what is not a plain copy (a conversion, JSON, a derived column)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def from_row(cls: type[T], row: Mapping[str, Any], **given: Any) -> T:
    """A `cls` from the row's columns of its fields' names; `given` fields are the caller's
    (converted or computed); fields the row lacks keep their defaults."""
    keys = set(row.keys())
    values = {n: row[n] for n in _names(cls) if n not in given and n in keys}
    return cls(**values, **given)


def to_row(record: Any, **given: Any) -> dict[str, Any]:
    """The record's fields as columns, `given` replacing or adding some."""
    return {n: getattr(record, n) for n in _names(type(record))} | given
