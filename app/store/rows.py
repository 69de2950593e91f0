"""Rows ↔ records, declared once: a record's fields are named like its table's columns, so a
mapper only states what is not a plain copy (a conversion, JSON, a derived column)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")


_SHAPES: dict[type, tuple[tuple[str, ...], Any]] = {}


def _shape(cls: type) -> tuple[tuple[str, ...], Any]:
    """The record type's field names and one getter answering their values as a tuple, made
    once per type (every accepted event passes here)."""
    shape = _SHAPES.get(cls)
    if shape is None:
        names = tuple(f.name for f in fields(cls))
        one = attrgetter(*names)  # of one name it answers the value, not a 1-tuple
        shape = _SHAPES[cls] = (names, one if len(names) > 1 else lambda r: (one(r),))
    return shape


def from_row(cls: type[T], row: Mapping[str, Any], **given: Any) -> T:
    """A `cls` from the row's columns of its fields' names; `given` fields are the caller's
    (converted or computed); fields the row lacks keep their defaults."""
    keys = set(row.keys())
    values = {n: row[n] for n in _shape(cls)[0] if n not in given and n in keys}
    return cls(**values, **given)


def to_row(record: Any, **given: Any) -> dict[str, Any]:
    """The record's fields as columns, `given` replacing or adding some."""
    names, get = _shape(type(record))
    row = dict(zip(names, get(record), strict=True))
    return row | given if given else row
