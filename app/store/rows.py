"""Rows ↔ records, declared once: a record's fields are named like its table's columns, so a
mapper only states what is not a plain copy (a conversion, JSON, a derived column)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from operator import attrgetter
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


_GETTERS: dict[type, Any] = {}


def to_row(record: Any, **given: Any) -> dict[str, Any]:
    """The record's fields as columns, `given` replacing or adding some (one attrgetter per
    record type: every accepted event passes here)."""
    cls = type(record)
    get = _GETTERS.get(cls)
    if get is None:
        names = _names(cls)  # attrgetter of one name answers the value, not a 1-tuple
        one = attrgetter(*names)
        get = _GETTERS[cls] = one if len(names) > 1 else lambda r: (one(r),)
    row = dict(zip(_names(cls), get(record), strict=True))
    return row | given if given else row
